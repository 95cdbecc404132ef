// Package ingest is ticketrouter's side of the IMAP mailbox: it watches
// mailboxes, reads each new mail into a spool, hands it to a Handler, and
// changes the mailbox (moves the mail to the processed or quarantine
// folder) only after the handler says its ticket is safe. Parsing a mail is
// package mail's job; this package holds the connection, the sessions, the
// scans, the spools, the checkpoints and the IMAP credentials.
package ingest
