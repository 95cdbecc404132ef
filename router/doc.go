// Package router is the service that routes support mail to the agents'
// queues. Pipeline turns one raw mail into its ticket (parse, authenticate
// the sender, decide, rate-limit): route, run and the demo share it.
// Service is one running replica: the IMAP watchers (package ingest), the
// handler that publishes each ticket with its raw mail (package broker)
// before the mail is moved, the account reloads, and the operator's HTTP
// surface (health, readiness, metrics).
package router
