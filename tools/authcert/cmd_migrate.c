/*
 * --migrate-registry FROM TO: copy the agents and the queued commands from
 * one registry to another (SQLite to PostgreSQL when one machine is
 * outgrown, or back), counts checked before the copy commits.
 */
#include <stdio.h>

#include "authcert/registry_copy.h"
#include "tool.h"

int cmd_migrate(const struct tool_opts *o)
{
    authcert_registry_copy_stats st = { 0 };
    authcert_status rc;

    rc = authcert_registry_copy(tool_pos_last(o, 1), tool_pos_last(o, 0), &st);
    if (rc != AUTHCERT_OK)
        return tool_fail(o, rc);
    tool_say(o, "copied %llu agent%s, %llu queued command%s (%llu deliver%s), %llu "
             "enrollment token%s, %llu pending enrollment%s; counts verified",
             (unsigned long long)st.agents, st.agents == 1 ? "" : "s",
             (unsigned long long)st.commands, st.commands == 1 ? "" : "s",
             (unsigned long long)st.deliveries, st.deliveries == 1 ? "y" : "ies",
             (unsigned long long)st.tokens, st.tokens == 1 ? "" : "s",
             (unsigned long long)st.pending, st.pending == 1 ? "" : "s");
    return 0;
}
