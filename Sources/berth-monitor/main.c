// berth-monitor: the per-container monitor (like conmon or containerd-shim). It creates the
// container through the OCI runtime, holds its stdio, writes its log, serves attach clients,
// reaps it and records its exit status. Contract: README.md in this folder.
//
// This file is the launcher: argument parsing, then one fork. The parent waits until the
// container is created and prints the monitor's pid (or the error) for the daemon; the child
// is the monitor (monitor.c), detached so containers outlive the daemon.
#define _GNU_SOURCE
#include "monitor.h"
#include "berth_sealed_exe.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static const char usage_text[] =
    "usage: berth-monitor --runtime PATH --runtime-root DIR --id ID --bundle DIR --dir DIR\n"
    "                     [--tty] [--stdin] [--log-max-size BYTES] [--log-max-files N]\n"
    "\n"
    "Creates container ID with the runtime (without starting it), detaches, and prints its own\n"
    "pid once the container exists. In DIR: container.log (Docker json-file), attach.sock,\n"
    "ctl.sock, pid, runtime.log, and exit.json once the container's process has exited.\n";

static _Noreturn void usage_error(const char *fmt, const char *arg)
{
    fputs("berth-monitor: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\n", stderr);
    fputs(usage_text, stderr);
    exit(2);
}

static long long parse_count(const char *flag, const char *text, long long min)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end != '\0' || v < min) usage_error("invalid value for %s", flag);
    return v;
}

static void parse(int argc, char **argv, struct options *o)
{
    const char *max_size = NULL, *max_files = NULL;
    struct { const char *name; const char **value; } valued[] = {
        {"runtime", &o->runtime}, {"runtime-root", &o->runtime_root}, {"id", &o->id},
        {"bundle", &o->bundle}, {"dir", &o->dir}, {"log-max-size", &max_size},
        {"log-max-files", &max_files},
    };
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            fputs(usage_text, stdout);
            exit(0);
        }
        if (strncmp(arg, "--", 2) != 0) usage_error("unexpected argument %s", arg);
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
        if (!eq && strcmp(name, "tty") == 0) { o->tty = true; continue; }
        if (!eq && strcmp(name, "stdin") == 0) { o->stdin_open = true; continue; }
        const char **target = NULL;
        for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++)
            if (strlen(valued[k].name) == name_len && strncmp(valued[k].name, name, name_len) == 0) target = valued[k].value;
        if (target == NULL) usage_error("unknown flag %s", arg);
        if (eq) {
            *target = eq + 1;
        } else {
            if (i + 1 >= argc) usage_error("%s needs a value", arg);
            *target = argv[++i];
        }
    }
    if (!o->runtime) usage_error("%s is required", "--runtime");
    if (!o->runtime_root) usage_error("%s is required", "--runtime-root");
    if (!o->id || !*o->id) usage_error("%s is required", "--id");
    if (!o->bundle) usage_error("%s is required", "--bundle");
    if (!o->dir) usage_error("%s is required", "--dir");
    o->log_max_size = max_size ? parse_count("--log-max-size", max_size, 1) : 0;
    o->log_max_files = max_files ? (int)parse_count("--log-max-files", max_files, 1) : 1;
    if (o->log_max_files > 1000) usage_error("invalid value for %s", "--log-max-files");

    // The monitor works from "/": every path it passes on must stand on its own.
    o->runtime_root = absolute_path(o->runtime_root);
    o->bundle = absolute_path(o->bundle);
    o->dir = absolute_path(o->dir);
    if (strchr(o->runtime, '/')) o->runtime = absolute_path(o->runtime);
    if (!o->runtime || !o->runtime_root || !o->bundle || !o->dir) usage_error("%s", "cannot resolve paths");
}

int main(int argc, char **argv)
{
    // A container that sees this process (--pid host) must not reach the host's binary through
    // /proc/PID/exe, nor read its memory or descriptors (see berth_sealed_exe.h).
    if (berth_run_sealed(argc, argv) != 0) {
        perror("berth-monitor: cannot run from a sealed copy of itself");
        return 1;
    }
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

    // Descriptors the caller leaked would live as long as the container (and reach it).
    if (close_range(3, ~0U, 0) != 0)
        for (int fd = 3; fd < 1024; fd++) close(fd);

    struct options o = {0};
    parse(argc, argv, &o);

    int sync[2];
    if (pipe2(sync, O_CLOEXEC) != 0) {
        perror("berth-monitor: pipe");
        return 1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("berth-monitor: fork");
        return 1;
    }
    if (pid == 0) {
        close(sync[0]);
        monitor_run(&o, sync[1]);
    }
    close(sync[1]);

    char message[4096];
    size_t len = 0;
    ssize_t r;
    while (len < sizeof message - 1 && ((r = read(sync[0], message + len, sizeof message - 1 - len)) > 0 || (r < 0 && errno == EINTR)))
        if (r > 0) len += (size_t)r;
    message[len] = '\0';
    if (len > 0 && message[0] == 'O') {
        printf("%d\n", (int)pid);
        return fflush(stdout) == 0 ? 0 : 1;
    }
    // The monitor gave up and exits: collect it so nothing of it remains.
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (len > 1 && message[0] == 'E') {
        fprintf(stderr, "berth-monitor: %s\n", message + 1);
    } else if (WIFSIGNALED(status)) {
        fprintf(stderr, "berth-monitor: the monitor was killed by signal %d before the container was created\n", WTERMSIG(status));
    } else {
        fprintf(stderr, "berth-monitor: the monitor exited (status %d) before the container was created\n", WEXITSTATUS(status));
    }
    return 1;
}
