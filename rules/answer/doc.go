// Package answer holds the rules for the mail ticketrouter sends back, as
// pure logic: in which language a customer wrote (Language), whether a mail
// may get an automatic answer at all under RFC 3834 (AutoReplyAllowed),
// the acknowledgement, self-service and desk reply texts as templates that
// are policy data (Config, compiled into a Set), and who a desk reply may
// go to (Recipient). It does no I/O, no network and no logging: the policy
// loader in package rules compiles the templates, and the service and the
// desk decide when to send.
package answer
