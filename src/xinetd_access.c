/* xinetd_access: only_from and no_access as allow and deny; see xinetd_access.h. */
#include <stdlib.h>
#include <sys/socket.h>

#include "xinetd_access.h"
#include "xinetd_diag.h"
#include "xinetd_emit.h"

/*
 * The numeric networks of only_from (or of no_access, deny), each once, into
 * *v to be freed; a name is noted as not carried over, and sets *names.
 */
static size_t
numeric_nets(struct conv *cv, struct entry *e, int deny, struct buf *tail, struct net **v,
    int *names)
{
	const struct nets *l = deny ? &e->no_access : &e->only_from;
	const char *attr = deny ? "no_access" : "only_from";
	size_t n = 0, cap = 0;

	*v = NULL;
	*names = 0;
	for (size_t i = 0; i < l->n; i++) {
		const struct net *x = &l->v[i];
		size_t j;

		if (x->family == 0) {
			if (deny)
				diag_not_carried(cv, tail, &x->at, e->name, attr, "%s: "
				    "porterd matches numeric addresses only, so clients "
				    "from %s are no longer refused; list its addresses "
				    "instead", x->text, x->text);
			else
				diag_not_carried(cv, tail, &x->at, e->name, attr, "%s: "
				    "porterd matches numeric addresses only; list the "
				    "addresses of %s instead", x->text, x->text);
			*names = 1;
			continue;
		}
		for (j = 0; j < n && !nets_same(&(*v)[j], x); j++)
			;
		if (j == n) {
			*v = xgrow(*v, n, &cap, sizeof(**v));
			(*v)[n++] = *x;
		}
	}
	return n;
}

void
access_keys(struct conv *cv, struct entry *e, int server_waits, struct buf *keys,
    struct buf *tail)
{
	struct net *allow, *deny;
	size_t nallow, ndeny;
	int names_only, deny_names;

	if (server_waits) {
		if (e->only_from.present)
			diag_not_carried(cv, tail, &e->only_from.at, e->name, "only_from",
			    "a wait = yes handler receives its clients itself, so porterd "
			    "cannot check them");
		if (e->no_access.present)
			diag_not_carried(cv, tail, &e->no_access.at, e->name, "no_access",
			    "a wait = yes handler receives its clients itself, so porterd "
			    "cannot check them");
		return;
	}
	nallow = numeric_nets(cv, e, 0, tail, &allow, &names_only);
	ndeny = numeric_nets(cv, e, 1, tail, &deny, &deny_names);
	/* xinetd lets the closer match win; with porterd, deny always does. */
	for (size_t i = 0; i < nallow; i++)
		for (size_t j = 0; j < ndeny; j++)
			if (nets_inside(&allow[i], &deny[j]))
				diag_not_carried(cv, tail, &allow[i].at, e->name,
				    "only_from", "%s lies within no_access %s: xinetd let "
				    "it in as the closer match, but porterd's deny wins, "
				    "so it is refused", allow[i].text, deny[j].text);
	if (e->only_from.present && nallow == 0) {
		static const struct net all[2] = { { .family = AF_INET }, { .family = AF_INET6 } };

		/* xinetd: an only_from that lists nothing lets nobody in. */
		emit_commentf(tail, "only_from (%s:%d) lets %s in, so deny covers every address.",
		    e->only_from.at.file, e->only_from.at.line,
		    names_only ? "no numeric address" : "nobody");
		emit_nets(keys, "deny", all, 2);
	} else {
		emit_nets(keys, "allow", allow, nallow);
		emit_nets(keys, "deny", deny, ndeny);
	}
	free(allow);
	free(deny);
}
