// Small system-call shims Swift cannot express directly (variadic or struct-heavy calls).
#ifndef BERTH_SYS_H
#define BERTH_SYS_H

#include <sys/types.h>
#include <sys/xattr.h>  // getxattr and friends, which Swift's Glibc module does not show

// Connects a SOCK_STREAM unix socket to path; returns the fd or -1 (errno set).
int berth_connect_unix(const char *path);

// Makes the calling process a child subreaper (orphans of its children come back to it).
int berth_set_subreaper(void);

// From now on SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and SIGWINCH sent to this
// process are passed on to pid (a foreground container, as `runc run` does).
void berth_forward_signals(pid_t pid);

// waitpid() that retries on EINTR; returns the pid or -1.
pid_t berth_waitpid(pid_t pid, int *status, int options);

// pipe2(fds, O_CLOEXEC), which Glibc does not export to Swift.
int berth_pipe_cloexec(int fds[2]);

// Exit code as a shell reports it: the status, or 128 + the signal.
int berth_exit_code(int status);

// ioctl(TIOCSWINSZ) on fd.
int berth_set_winsize(int fd, unsigned short rows, unsigned short cols);



// Foreground terminal for `run`/`exec` without a console socket (as `runc run` in a shell):
// puts our stdin in raw mode when it is a terminal, copies stdin to the pty master and the
// master to stdout, keeps the pty's size in step with ours (SIGWINCH), and returns when pid
// has exited, with its wait status in *status. Restores the terminal before returning.
int berth_tty_proxy(int master, pid_t pid, int *status);
#endif
