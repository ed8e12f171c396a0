// The native command launcher: what engine/launcher.ts's bash script does, without a shell between
// the build and its commands. `npm install` / `npm ci` compile it (scripts/bundle.mjs) when a C
// compiler is there; without one, the bash launcher runs the commands.
//
// Why: a launcher must start a process per command, and bash does it by forking itself (a copy
// of its page tables, its job table, a SIGCHLD trap that runs `jobs -l`) before the command's
// exec. posix_spawn here is a vfork and an exec, as GNU make's is: bench/spawn.ts measures the
// two side by side.
//
// Protocol (the same frames as the bash launcher's, read by FrameReader):
//   stdin: <token>\0, then per command 'x'<simple command>\0 or 'b'<any command>\0
//   stdout, which is also each command's stdout and stderr:
//     <token>B\n            a command starts (bytes from here on are its output)
//     <token>P<pid>\n       its pid, also its process group
//     <token>J<report>\n<token>K\n   "[1]+ <pid> Exit <n>" or "[1]+ <pid> Signal <n>"
//     <token>E<status>\n    its exit code, or 128 + the signal that killed it, then " gone" when
//                           its process group is empty
// argv[1] is the orphan mark, given to the commands as HUBMAKE_RUN and not carried by the
// launcher itself (a later build would take it for an orphaned command).
//
// What a command sees is what `bash -c 'set -eo pipefail;<cmd>'` spawned directly gives it: the
// environment as the build passed it, stdin from /dev/null, stdout and stderr into the pipe, its
// own session and process group, default signal dispositions. A simple command ('x': one program
// and plain words; the build sends 'x' only in an environment where bash -c would exec it as it
// is, see execsSimple in engine/launcher.ts) is spawned without bash, as bash -c would exec it in
// place: PWD set to the working directory when the build's PWD does not name it, SHLVL 0 when
// the build has none. One whose stdout is redirected into a file runs as bash -c would fork it,
// under a fork of this launcher that leads its session and group (its pid is the one the P frame
// gives). A program that cannot be spawned goes to bash -c, so its message and status are
// bash's ("command not found", 127).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const char *token;

/* Writes all of buf to stdout (the pipe the build reads), or exits: the build has gone. */
static void out(const char *buf, size_t n) {
  while (n > 0) {
    ssize_t w = write(1, buf, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      _exit(1);
    }
    buf += w;
    n -= (size_t)w;
  }
}

/* One frame: the token, the kind, the text. The frame and its text are at most a few dozen bytes. */
static void frame(char kind, const char *text) {
  char buf[512];
  int n = snprintf(buf, sizeof buf, "%s%c%s\n", token, kind, text);
  if (n > 0) out(buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* Whether the variable `name` is the entry e ("name=value"). */
static int is_var(const char *e, const char *name) {
  size_t n = strlen(name);
  return strncmp(e, name, n) == 0 && e[n] == '=';
}

/* SHLVL as bash -c leaves it for a command it execs in place: the build's, which the build sends
   'x' commands only with when it is a plain number below 999 (execsSimple), or 0 when unset. A
   command with a redirection bash forks instead, and that one sees bash's own count: one more. */
static void shlvl(char *dst, size_t cap, int forked) {
  const char *v = getenv("SHLVL");
  snprintf(dst, cap, "SHLVL=%d", (v ? atoi(v) : 0) + forked);
}

/* Whether $PWD is absolute and names the working directory: bash keeps it then, else sets it. */
static int pwd_names_cwd(void) {
  const char *p = getenv("PWD");
  struct stat a, b;
  if (!p || p[0] != '/' || stat(p, &a) != 0 || stat(".", &b) != 0) return 0;
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* The environment of one command: the launcher's own (the build's), with the orphan mark, and
   for a program spawned without bash the PWD and SHLVL bash would give it. */
static char **command_env(const char *mark_var, int simple, int forked, char *pwd_var, char *shlvl_var) {
  size_t n = 0;
  while (environ[n]) n++;
  char **env = malloc((n + 4) * sizeof *env);
  if (!env) return NULL;
  size_t k = 0;
  int set_pwd = simple && !pwd_names_cwd();
  for (size_t i = 0; i < n; i++) {
    const char *e = environ[i];
    if (is_var(e, "HUBMAKE_RUN")) continue;
    if (simple && is_var(e, "SHLVL")) continue;
    if (set_pwd && is_var(e, "PWD")) continue;
    env[k++] = (char *)e;
  }
  env[k++] = (char *)mark_var;
  if (simple) {
    shlvl(shlvl_var, 32, forked);
    env[k++] = shlvl_var;
    if (set_pwd) {
      char cwd[4096];
      if (getcwd(cwd, sizeof cwd)) {
        snprintf(pwd_var, 4100, "PWD=%s", cwd);
        env[k++] = pwd_var;
      }
    }
  }
  env[k] = NULL;
  return env;
}

/* The script bash -c runs for a command: the build's shell options, then the command. */
static char *bash_script(const char *cmd) {
  size_t len = strlen(cmd);
  char *script = malloc(len + 18);
  if (!script) return NULL;
  memcpy(script, "set -eo pipefail;", 17);
  memcpy(script + 17, cmd, len + 1);
  return script;
}

/* glibc's sigfillset leaves out the two signals it keeps for itself (32 and 33), and its
   posix_spawn then sets them to SIG_IGN in the child, which the exec keeps: every command and
   everything it starts would ignore them. Their bits are set by hand so they are reset to SIG_DFL
   too, as for a command node spawns. */
static void fill_all(sigset_t *all) {
  sigfillset(all);
#ifdef __GLIBC__
  for (int sig = 32; sig <= 33; sig++) {
    unsigned long *w = (unsigned long *)all;
    w[(sig - 1) / (8 * sizeof *w)] |= 1UL << ((sig - 1) % (8 * sizeof *w));
  }
#endif
}

/* Spawn attributes for a command: an empty signal mask and every disposition back to default;
   with `session`, a session of its own, as node's detached spawn gives (setsid): the command
   leads its process group, and that group is orphaned, so a SIGTSTP, SIGTTIN or SIGTTOU it sends
   itself is discarded by the kernel instead of stopping it for good. */
static void command_attr(posix_spawnattr_t *at, int session) {
  sigset_t none, all;
  sigemptyset(&none);
  fill_all(&all);
  posix_spawnattr_init(at);
  posix_spawnattr_setsigmask(at, &none);
  posix_spawnattr_setsigdefault(at, &all);
  posix_spawnattr_setflags(at, (session ? POSIX_SPAWN_SETSID : 0) | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
}

/* The flags bash opens a command's `> file` / `>> file` with (created with 0666 under the umask). */
static int redirect_flags(int append) {
  return O_WRONLY | O_CREAT | O_NOCTTY | (append ? O_APPEND : O_TRUNC);
}

/* Whether the launcher may take a command's `> file` / `>> file` itself: the file opens, as bash
   would open it, and is a regular file. Otherwise bash is to handle it: a FIFO's open would block
   the launcher itself, where the build could not stop it (so the look is non-blocking); a device
   or a directory is bash's business; a file that cannot be opened gets bash's message. The file
   is closed again at once: the command's own process opens it (posix_spawn's addopen), so no
   process but the command holds it, and a script the command writes there and runs finds it
   free ("Text file busy" otherwise, while the launcher still held it). */
static int redirect_ok(const char *to, int append) {
  struct stat st;
  if (stat(to, &st) == 0 && !S_ISREG(st.st_mode)) return 0;
  int fd = open(to, redirect_flags(append) | O_CLOEXEC | O_NONBLOCK, 0666);
  if (fd < 0) return 0;
  int ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  close(fd);
  return ok;
}

/* A command with a redirection, as bash -c runs it: bash leads the session and the process group
   and forks the command, which can therefore start a session of its own (setsid) and is not the
   one its group is named after. Here a fork of this small launcher takes bash's place: it leads
   the session, spawns the program onto the opened file, waits, and ends as the program ended (a
   death by a signal is passed on by dying of it, without a core of its own). A program that
   cannot be spawned, or whose file cannot be opened after all, makes it exec bash -c instead, for
   bash's message and status. Returns 0 with the leader's pid once its session and group exist
   (the build may signal the group as soon as it has the pid), or an errno when not even the fork
   worked. */
static int spawn_under_leader(pid_t *pid, char **args, posix_spawn_file_actions_t *fa, char **env, const char *mark_var, const char *cmd, int devnull, char *pwd_var, char *shlvl_var) {
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) != 0) return errno;
  pid_t leader = fork();
  if (leader < 0) {
    int e = errno;
    close(ready[0]);
    close(ready[1]);
    return e;
  }
  if (leader > 0) {
    // The fork closes its end once it has called setsid(): until then a kill of the group the
    // pid names would find none (a review lost the build's SIGTERM to this 2 times in 3).
    close(ready[1]);
    char b;
    while (read(ready[0], &b, 1) < 0 && errno == EINTR) {}
    close(ready[0]);
    *pid = leader;
    return 0;
  }
  close(ready[0]);
  setsid();
  close(ready[1]);
  // Its stdin is the build's pipe of commands: not to be held, nor read by bash below.
  dup2(devnull, 0);
  // As bash does while it waits for a command: an interrupt or a quit is the command's to handle,
  // and this fork ends as the command ends (by the signal, if the command died of it).
  signal(SIGINT, SIG_IGN);
  signal(SIGQUIT, SIG_IGN);
  posix_spawnattr_t at;
  command_attr(&at, 0);
  sigset_t none;
  sigemptyset(&none);
  pid_t child;
  if (posix_spawnp(&child, args[0], fa, &at, args, env) != 0) {
    char *script = bash_script(cmd);
    char **benv = command_env(mark_var, 0, 0, pwd_var, shlvl_var);
    if (script && benv) {
      char *bargs[] = {"/bin/bash", "-c", script, NULL};
      dup2(1, 2);
      signal(SIGINT, SIG_DFL);
      signal(SIGQUIT, SIG_DFL);
      sigprocmask(SIG_SETMASK, &none, NULL);
      execve("/bin/bash", bargs, benv);
    }
    _exit(127);
  }
  close(devnull);
  int st = 0;
  while (waitpid(child, &st, 0) < 0 && errno == EINTR) {}
  if (WIFSIGNALED(st)) {
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    signal(WTERMSIG(st), SIG_DFL);
    sigprocmask(SIG_SETMASK, &none, NULL);
    raise(WTERMSIG(st));
  }
  _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 1);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: hubmake-launcher <orphan mark> (commands on stdin, from hubmake only)\n");
    return 2;
  }
  signal(SIGPIPE, SIG_DFL);
  char *mark_var = malloc(strlen(argv[1]) + 16);
  if (!mark_var) return 1;
  sprintf(mark_var, "HUBMAKE_RUN=%s", argv[1]);

  char *line = NULL;
  size_t cap = 0;
  ssize_t n = getdelim(&line, &cap, '\0', stdin);
  if (n <= 1) return 0;
  token = strndup(line, (size_t)n - 1);
  if (!token) return 1;

  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (devnull < 0) return 1;

  static char pwd_var[4100], shlvl_var[32];
  while ((n = getdelim(&line, &cap, '\0', stdin)) > 0) {
    // A command whose closing NUL never came (the build died while writing it) is not run.
    if (line[n - 1] != '\0') break;
    n--;
    if (n < 1) continue;
    const int simple = line[0] == 'x';
    const char *cmd = line + 1;
    frame('B', "");

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, devnull, 0);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    command_attr(&at, 1);

    pid_t pid = -1;
    int err = -1;
    if (simple) {
      // The words of a simple command are separated by single spaces (engine/launcher.ts SIMPLE),
      // and may end with one redirection of its stdout: `> file` or `>> file`, then `2>&1`
      // (REDIRECTED, which also guarantees the file's word). Such a command runs under a leader
      // fork, as under bash (spawn_under_leader), its process opening the file (redirect_ok); a
      // file that cannot be opened sends the command to bash, whose message and status it then
      // gets.
      char *copy = strdup(cmd);
      size_t words = 1;
      for (const char *p = cmd; *p; p++) words += *p == ' ';
      char **args = copy ? malloc((words + 1) * sizeof *args) : NULL;
      size_t w = 0;
      const char *to = NULL;
      int append = 0, both = 0;
      if (args) {
        for (char *s = copy, *save = NULL, *t = strtok_r(s, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
          if (to) both = strcmp(t, "2>&1") == 0;
          else if (strcmp(t, ">") == 0 || strcmp(t, ">>") == 0) {
            append = t[1] == '>';
            to = strtok_r(NULL, " ", &save);
          } else args[w++] = t;
        }
        args[w] = NULL;
      }
      char **env = args && w > 0 ? command_env(mark_var, 1, to != NULL, pwd_var, shlvl_var) : NULL;
      if (env && !to) err = posix_spawnp(&pid, args[0], &fa, &at, args, env);
      if (env && to && redirect_ok(to, append)) {
        // In this order: stderr into the pipe first, then stdout into the file (and, for `2>&1`,
        // stderr after it), as bash applies `> file 2>&1` left to right.
        posix_spawn_file_actions_t rfa;
        posix_spawn_file_actions_init(&rfa);
        posix_spawn_file_actions_adddup2(&rfa, devnull, 0);
        posix_spawn_file_actions_adddup2(&rfa, 1, 2);
        posix_spawn_file_actions_addopen(&rfa, 1, to, redirect_flags(append), 0666);
        if (both) posix_spawn_file_actions_adddup2(&rfa, 1, 2);
        err = spawn_under_leader(&pid, args, &rfa, env, mark_var, cmd, devnull, pwd_var, shlvl_var);
        posix_spawn_file_actions_destroy(&rfa);
      }
      free(env);
      free(args);
      free(copy);
    }
    if (err != 0) {
      char *script = bash_script(cmd);
      char **env = command_env(mark_var, 0, 0, pwd_var, shlvl_var);
      if (script && env) {
        char *args[] = {"/bin/bash", "-c", script, NULL};
        err = posix_spawn(&pid, "/bin/bash", &fa, &at, args, env);
      }
      free(env);
      free(script);
    }
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);

    char text[128];
    int status;
    if (err != 0) {
      // Not even bash could be started: say so in the command's output, as bash would.
      char msg[256];
      int m = snprintf(msg, sizeof msg, "hubmake-launcher: cannot start /bin/bash: %s\n", strerror(err));
      if (m > 0) out(msg, (size_t)m);
      status = 127;
      snprintf(text, sizeof text, "[1]+ 0 Exit %d", status);
    } else {
      snprintf(text, sizeof text, "%d", (int)pid);
      frame('P', text);
      int st = 0;
      while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
      if (WIFSIGNALED(st)) {
        status = 128 + WTERMSIG(st);
        snprintf(text, sizeof text, "[1]+ %d Signal %d", (int)pid, WTERMSIG(st));
      } else {
        status = WEXITSTATUS(st);
        snprintf(text, sizeof text, "[1]+ %d Exit %d", (int)pid, status);
      }
    }
    frame('J', text);
    frame('K', "");
    // " gone": nothing of the command's process group is left, so nothing it started can still
    // hold the output pipe open; the build need not look (engine/launcher.ts settle).
    int gone = err == 0 && kill(-pid, 0) != 0 && errno == ESRCH;
    snprintf(text, sizeof text, gone ? "%d gone" : "%d", status);
    frame('E', text);
  }
  return 0;
}
