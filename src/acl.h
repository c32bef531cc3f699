/* acl: allow/deny lists of IPv4 and IPv6 CIDRs, matched in binary form. */
#ifndef PORTERD_ACL_H
#define PORTERD_ACL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct cidr {
	int		 family;	/* AF_INET or AF_INET6 */
	unsigned	 bits;
	uint8_t		 addr[16];	/* network byte order, host bits zero */
};

struct acl {
	struct cidr	*v;
	size_t		 n;
};

/*
 * Parse a comma-separated list ("10.0.0.0/8, ::1, 192.0.2.7") and append it to
 * acl. A bare address is a /32 or /128. 0, or -1 with *error set.
 */
int acl_parse(struct acl *acl, const char *list, const char **error);
void acl_free(struct acl *acl);
/*
 * Does sa fall in any CIDR of acl? An IPv4-mapped IPv6 address (an IPv4 client
 * of a dual-stack socket) is matched as the IPv4 address it is.
 */
int acl_match(const struct acl *acl, const struct sockaddr *sa);
/* Append the list back in acl_parse syntax. */
void acl_format(const struct acl *acl, char *buf, size_t len);

/*
 * The address of sa as family + 16 bytes, v4-mapped folded to IPv4, masked to
 * `bits4` or `bits6` leading bits: the key that groups a client's addresses.
 */
struct srckey {
	uint8_t		 family;
	uint8_t		 addr[16];
};
int acl_source_key(const struct sockaddr *sa, unsigned bits4, unsigned bits6,
    struct srckey *key);

#endif
