// Package archtest holds the architecture test: it fails when an import
// breaks the layering the README's layout table describes
// (cmd → router → {ingest, rules} → ingest/mail), so that a forbidden
// dependency is caught when it is added, not when a reader trips on it.
package archtest
