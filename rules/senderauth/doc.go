// Package senderauth decides whether a mail provably comes from the domain
// of its From address, and returns one Verdict that the policy reads: from
// the Authentication-Results header of a trusted server (RFC 8601), read
// to the grammar and decided as a whole, and from our own, bounded
// verification of its DKIM signatures (RFC 6376), with DMARC-style
// alignment. DNS lookups for DKIM keys go through a Resolver that the
// caller gives; nothing else here does I/O.
package senderauth
