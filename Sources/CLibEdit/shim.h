// libedit's readline-compatible interface: the callback API (rl_callback_handler_install,
// rl_callback_read_char) lets the REPL poll stdin together with the network, and the history
// functions keep ~/.orderly_history.
#include <stdio.h>
#include <editline/readline.h>

// libedit's state lives in C globals. Swift 6 rejects touching imported mutable globals from
// Swift code, so these accessors are the only way in; the REPL calls them from its one editor
// thread only.
static inline int orderly_rl_point(void) { return rl_point; }
static inline int orderly_rl_end(void) { return rl_end; }
// The application name ~/.editrc can test for ("orderly:bind ...").
static inline void orderly_rl_set_name(void) { rl_readline_name = "orderly"; }
