// berth-init: the minimal PID 1 that `docker run --init` puts in front of the command, mounted
// into the container at /sbin/docker-init. It starts the command, forwards every signal it
// can catch to it, reaps every zombie (orphans are reparented to PID 1) and exits with the
// command's status (128+N when killed by signal N). Statically linked: the container's own
// libc may be anything or nothing.
//
//   docker-init [-s] [-g] [-v] [-l] -- command [args...]
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

// Signals that are about this process itself, never forwarded.
static int synchronous(int sig) {
    return sig == SIGFPE || sig == SIGILL || sig == SIGSEGV || sig == SIGBUS || sig == SIGABRT ||
           sig == SIGTRAP || sig == SIGSYS || sig == SIGTTIN || sig == SIGTTOU;
}

int main(int argc, char **argv) {
    int first = 1;
    while (first < argc && argv[first][0] == '-' && strcmp(argv[first], "--") != 0) first++;  // tini's flags: accepted, unneeded
    if (first < argc && strcmp(argv[first], "--") == 0) first++;
    if (first >= argc) {
        fprintf(stderr, "berth-init: usage: %s [--] command [args...]\n", argv[0]);
        return 2;
    }
    if (getpid() != 1) prctl(PR_SET_CHILD_SUBREAPER, 1);

    sigset_t all, old;
    sigfillset(&all);
    for (int s = 1; s < NSIG; s++)
        if (synchronous(s)) sigdelset(&all, s);
    sigprocmask(SIG_SETMASK, &all, &old);

    pid_t child = fork();
    if (child < 0) {
        perror("berth-init: fork");
        return 1;
    }
    if (child == 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        execvp(argv[first], argv + first);
        int err = errno;
        fprintf(stderr, "berth-init: exec %s failed: %s\n", argv[first], strerror(err));
        _exit(err == ENOENT ? 127 : 126);
    }

    for (;;) {
        siginfo_t info;
        int sig = sigwaitinfo(&all, &info);
        if (sig < 0) {
            if (errno == EINTR) continue;
            perror("berth-init: sigwaitinfo");
            return 1;
        }
        if (sig != SIGCHLD) {
            kill(child, sig);
            continue;
        }
        for (;;) {
            int status;
            pid_t pid = waitpid(-1, &status, WNOHANG);
            if (pid <= 0) break;
            if (pid != child) continue;
            // The command is done; what it left behind goes with the container.
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
    }
}
