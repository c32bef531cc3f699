/*
 * xinetd_nets: the address lists of only_from and no_access as xinetd reads
 * them: CIDRs, addresses whose trailing zero bytes are wildcards, factorized
 * forms such as 10.1.2.{3,4}, and names, kept apart since porterd matches
 * numeric addresses only.
 *
 * libporterd's acl.h is not used: its syntax is porterd's (a bare address is a
 * host), its messages would change the converter's, and acl_match folds an
 * IPv4-mapped IPv6 network into IPv4, where xinetd keeps the families apart.
 */
#ifndef PORTERD_XINETD_NETS_H
#define PORTERD_XINETD_NETS_H

#include <stddef.h>

#include "xinetd_text.h"

/* One network of only_from or no_access. */
struct net {
	int		 family;	/* AF_INET, AF_INET6; 0: a name porterd cannot match */
	unsigned char	 a[16];		/* the bits beyond the prefix are zero */
	int		 bits;
	char		*text;		/* the word as written */
	struct where	 at;
};

struct nets {
	struct net	*v;
	size_t		 n, cap;
	int		 present;
	struct where	 at;		/* the last assignment */
};

/*
 * The networks one word stands for, at most max of them, into out (their
 * text points to word). Returns 0 and *count, or -1 with *why set when the
 * word is malformed.
 */
int nets_parse(const char *word, struct net *out, size_t max, size_t *count,
    const char **why);
/* Same network, or the same name. */
int nets_same(const struct net *x, const struct net *y);
/* inner lies within outer, and is a smaller network. */
int nets_inside(const struct net *inner, const struct net *outer);

/* The list keeps a copy of n's text. */
void nets_add(struct nets *l, const struct net *n);
void nets_del(struct nets *l, size_t i);
void nets_clear(struct nets *l);
void nets_free(struct nets *l);
/* Append the networks of from to `to`, which takes its `present` and `at` too. */
void nets_copy(struct nets *to, const struct nets *from);

#endif
