// Running from a binary a container cannot write (the CVE-2019-5736 class).
//
// A process of the runtime that enters a container is, until its execve, the runtime's own
// binary; a container program can also make the kernel execute it again (`#!/proc/self/exe`).
// Through /proc/PID/exe the container then holds the host's file. If that file sits on a
// writable mount, the container can rewrite the runtime that the host runs next.
#ifndef BERTH_SEALED_EXE_H
#define BERTH_SEALED_EXE_H

// Returns 1 when the running executable cannot be written through /proc/self/exe: it is on a
// read-only mount, or a sealed memfd.
int berth_exe_is_sealed(void);

// Makes sure the process runs from a sealed executable: returns at once when it already does,
// otherwise re-executes itself (same argv and environment) from a read-only, detached bind
// mount of its binary, or, where that cannot be made, from a sealed memfd copy. Returns -1 with
// errno set only when neither could be made. Call it first thing in main, before any thread.
int berth_run_sealed(int argc, char **argv);

#endif
