/*
 * odin-gate: a run's start gate as one small program (see odin/executor/gate.py).
 *
 *   odin-gate UID GID GROUPS NOFILE NPROC AS CORE CWD -- PROGRAM [ARG...]
 *   odin-gate UID GID GROUPS NOFILE NPROC AS CORE CWD --early PROGRAM [ARG...]
 *
 * Started by a root engine with the job's environment, but for the variables the C
 * library would obey in a root process (GLIBC_TUNABLES, LD_..., see gate_env in gate.py):
 * those come named ODIN_GATE_NAME, so that a static glibc does not read them as root.
 * In order, it
 *   0. leads a session of its own, unless it was started as one: the engine's
 *      spawn then returns at the exec, without waiting for the child to be
 *      scheduled in its new session (with autogroups, one more scheduling entity
 *      among every running job's: milliseconds on a busy machine);
 *   0b. waits as a batch task (SCHED_BATCH), so that when the engine opens the gate
 *      the woken gate does not preempt the engine on its core (which then notes the
 *      starts late: bench/limits.md); it is back to SCHED_OTHER before the job's exec;
 *   1. becomes the job's owner: supplementary GROUPS ("-" for none, else gids
 *      separated by commas), then GID and UID as real, effective and saved ids;
 *   1b. gives the renamed variables their names back, in place: the job sees
 *      its environment exactly as the engine made it, in the same order;
 *   2. sets the run's resource limits (soft = hard), as the owner, so it can only
 *      lower them, as prlimit after setpriv did, and the job's umask (JOB_UMASK, as
 *      odin.config says: a root engine's own umask closes its files to everyone);
 *   3. waits for the go line on stdin; end of input first means "do not run":
 *      exit 111 without a word;
 *   4. enters CWD with the owner's rights (exit 112 if it may not);
 *   5. puts stdin on /dev/null and execs PROGRAM (127 if it is missing, 126 if
 *      it cannot be run).
 * Any failure before the gate exits 120 with the reason on stderr.
 *
 * With --early, the first line on stdin only says that the engine has placed the
 * process in its run cgroup: the gate enters CWD and execs PROGRAM at once, still a
 * batch task and with stdin still the gate's pipe. PROGRAM is a program that does its
 * own start-up then waits for the go line itself (the Python interpreter, given a
 * prelude: odin/executor/early.py), back to SCHED_OTHER when it comes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

enum { NOT_RELEASED = 111, NO_WORKDIR = 112, SETUP_FAILED = 120 };
#define JOB_UMASK 022 /* odin.config.JOB_UMASK */
#define KEPT_PREFIX "ODIN_GATE_" /* odin.executor.gate._KEPT_PREFIX */

static void fail(int code, const char *what, const char *detail)
{
    dprintf(2, "odin: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    _exit(code);
}

static unsigned long long number(const char *text)
{
    char *end = NULL;
    unsigned long long value;

    if (text[0] < '0' || text[0] > '9')
        fail(SETUP_FAILED, "the gate was given a bad number", text);
    errno = 0;
    value = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0')
        fail(SETUP_FAILED, "the gate was given a bad number", text);
    return value;
}

static unsigned int id(const char *text)
{
    unsigned long long value = number(text);

    if (value >= (unsigned long long)(unsigned int)-1)
        fail(SETUP_FAILED, "the gate was given a bad id", text);
    return (unsigned int)value;
}

static void become(const char *uid_text, const char *gid_text, char *groups_text)
{
    uid_t uid = id(uid_text), ruid, euid, suid;
    gid_t gid = id(gid_text);
    size_t count = 0, size = 1;
    gid_t *groups;
    char *next;

    for (const char *c = groups_text; *c; c++)
        size += *c == ',';
    groups = calloc(size, sizeof *groups);
    if (groups == NULL)
        fail(SETUP_FAILED, "out of memory", NULL);
    if (strcmp(groups_text, "-") != 0)
        for (char *item = strtok_r(groups_text, ",", &next); item; item = strtok_r(NULL, ",", &next))
            groups[count++] = id(item);
    if (setgroups(count, groups) != 0)
        fail(SETUP_FAILED, "cannot set the owner's groups", strerror(errno));
    free(groups);
    if (setresgid(gid, gid, gid) != 0)
        fail(SETUP_FAILED, "cannot switch to the owner's group", strerror(errno));
    if (setresuid(uid, uid, uid) != 0)
        fail(SETUP_FAILED, "cannot switch to the owner", strerror(errno));
    if (getresuid(&ruid, &euid, &suid) != 0 || ruid != uid || euid != uid || suid != uid)
        fail(SETUP_FAILED, "the switch to the owner did not hold", NULL);
}

/* ODIN_GATE_NAME=value becomes NAME=value again (the owner's now: see step 1b). */
static void restore_env(void)
{
    const size_t length = sizeof KEPT_PREFIX - 1;

    for (char **entry = environ; *entry != NULL; entry++)
        if (strncmp(*entry, KEPT_PREFIX, length) == 0)
            *entry += length;
}

static void limit(int resource, const char *text)
{
    struct rlimit value;

    value.rlim_cur = value.rlim_max = (rlim_t)number(text);
    if (setrlimit(resource, &value) != 0)
        fail(SETUP_FAILED, "cannot set a resource limit", strerror(errno));
}

/* A scheduling policy for this process; a hint only, so a refusal is not an error.
 * The raw system call: musl's sched_setscheduler() is a stub that fails. */
static void set_policy(int policy)
{
    struct sched_param none = {0};

    (void)syscall(SYS_sched_setscheduler, 0, policy, &none);
}

static void wait_for_go(void)
{
    char byte;

    for (;;) {
        ssize_t got = read(0, &byte, 1);
        if (got == 1 && byte == '\n')
            return;
        if (got == 1 || (got < 0 && errno == EINTR))
            continue;
        _exit(NOT_RELEASED);
    }
}

int main(int argc, char **argv)
{
    int null; /* the /dev/null descriptor, then exec's errno */
    int early;

    if (argc < 11 || argv[10][0] != '/')
        early = -1;
    else
        early = strcmp(argv[9], "--early") == 0 ? 1 : strcmp(argv[9], "--") == 0 ? 0 : -1;
    if (early < 0)
        fail(SETUP_FAILED, "usage: odin-gate UID GID GROUPS NOFILE NPROC AS CORE CWD --|--early /PROGRAM [ARG...]", NULL);
    if (getsid(0) != getpid() && setsid() < 0)
        fail(SETUP_FAILED, "cannot start a session", strerror(errno));
    set_policy(SCHED_BATCH); /* its wake-up at the go line must not preempt the engine */
    become(argv[1], argv[2], argv[3]);
    restore_env();
    limit(RLIMIT_NOFILE, argv[4]);
    limit(RLIMIT_NPROC, argv[5]);
    limit(RLIMIT_AS, argv[6]);
    limit(RLIMIT_CORE, argv[7]);
    umask(JOB_UMASK);
    wait_for_go();
    if (!early)
        set_policy(SCHED_OTHER); /* the job itself runs as any other process */
    if (chdir(argv[8]) != 0)
        fail(NO_WORKDIR, "the job's owner may not enter its working directory", argv[8]);
    if (!early) { /* an early program reads the go line on stdin itself */
        null = open("/dev/null", O_RDONLY);
        if (null < 0 || dup2(null, 0) < 0)
            fail(SETUP_FAILED, "cannot open /dev/null", strerror(errno));
        if (null != 0)
            close(null);
    }
    execv(argv[10], argv + 10);
    null = errno;
    dprintf(2, "odin: cannot run %s: %s\n", argv[10], strerror(null));
    return null == ENOENT ? 127 : 126;
}
