// Package agents is who may use the agents' desk and how they prove it:
// the agents file (names, roles, colours and argon2id password hashes,
// reloaded when it changes), sessions kept in a JetStream key-value bucket
// so that any desk replica serves any request, a CSRF synchronizer token
// per session, login throttling and lockout per agent and per client
// address, and an authenticating reverse proxy's user header trusted only
// from configured addresses.
//
// Secrets stay inside: passwords, password hashes and session tokens never
// appear in an error or a log line written by this package, and a session
// is stored under the SHA-256 of its token, so that reading the bucket does
// not give a usable session.
//
// The package renders nothing: the web server in package desk calls
// Sessions.Login, Current, Logout and CheckCSRF.
package agents
