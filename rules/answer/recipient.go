package answer

import (
	"errors"
	"fmt"

	"github.com/ticketrouter/ticketrouter/rules/address"
)

// Errors of Recipient.
var (
	// ErrNoAdminAddress: a reset reply needs an admin address on file,
	// and the ticket's account has none (or no account matched).
	ErrNoAdminAddress = errors.New("no admin address on file: a reply that confirms or performs a reset goes only there")
	// ErrNoSender: an information reply goes to the sender, and the mail
	// named no single valid one.
	ErrNoSender = errors.New("the mail names no single valid sender to reply to")
)

// Recipient returns the only address a desk reply of kind may go to: a
// reset reply (KindReset) to the admin address on file, whoever wrote
// and whatever Reply-To says; an information reply (KindInfo) to the
// sender. The address is returned in canonical form (ASCII letters lower
// case, the domain as A-labels). The desk sends to it and lets no one
// change it.
func Recipient(kind Kind, adminEmail, sender string) (to string, err error) {
	switch kind {
	case KindReset:
		if adminEmail == "" {
			return "", ErrNoAdminAddress
		}
		to, err := address.CanonicalEmail(adminEmail)
		if err != nil {
			return "", fmt.Errorf("reply recipient: the admin address on file: %w", err)
		}
		return to, nil
	case KindInfo:
		if sender == "" {
			return "", ErrNoSender
		}
		to, err := address.SenderEmail(sender)
		if err != nil {
			return "", fmt.Errorf("reply recipient: %w: %w", ErrNoSender, err)
		}
		return to, nil
	}
	return "", fmt.Errorf("reply recipient: unknown kind %q (want %s or %s)", kind, KindReset, KindInfo)
}
