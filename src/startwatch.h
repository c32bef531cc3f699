/*
 * startwatch: a child started for a handler that does not reach its exec in
 * time is killed. Between its switch to the handler's user and its exec, any
 * process of that user may stop it (SIGSTOP cannot be blocked), and the
 * thread that started it waits for its exec (vfork) or its report (fork):
 * without this, another handler of the same user could hold that thread, or
 * the loop itself, for good.
 */
#ifndef PORTERD_STARTWATCH_H
#define PORTERD_STARTWATCH_H

#include <sys/types.h>

/* How long a child may take from its clone to its exec. */
#define STARTWATCH_LIMIT_MS 3000

/*
 * Context i (spawn.c: 0 the loop's, then the spawner threads') begins a start.
 * Returns where the child's pid is to be written (CLONE_PARENT_SETTID): tid,
 * or a place of the watch's own when tid is NULL.
 */
pid_t *startwatch_begin(int i, pid_t *tid);
/* The start of context i is over (exec'd, failed, or no child). */
void startwatch_end(int i);
/* The watching thread, named porterd-watch; 0, or -1 (then nothing is watched). */
int startwatch_start(void);
/* At exit: the thread ends. */
void startwatch_stop(void);

#endif
