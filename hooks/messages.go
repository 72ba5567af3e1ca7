package hooks

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/vigil-auth/vigil/flows"
)

// Message ids of Vigil's own block, outside Kratos' 1xxxxxx-5xxxxxx. They
// never change meaning: UIs key translations on them (docs/kratos.md).
const (
	MsgVerificationRequired = 4070001
	MsgNoAddress            = 4070002
	MsgLocked               = 4070003
	MsgInactive             = 4070004
	MsgRateLimited          = 4070005
	MsgUnavailable          = 4070006
	MsgBadRequest           = 4070007
	MsgUndeliverable        = 4070008
	MsgNewDevice            = 4070009
)

// message is one entry of Kratos' "messages" answer.
type message struct {
	ID      int            `json:"id"`
	Text    string         `json:"text"`
	Type    string         `json:"type"`
	Context map[string]any `json:"context,omitempty"`
}

type messageGroup struct {
	InstancePtr string    `json:"instance_ptr"`
	Messages    []message `json:"messages"`
}

// messagesBody renders the body Kratos reads from an interrupting answer:
// instance_ptr "#/" makes it a global message in ui.messages.
func messagesBody(m message) []byte {
	b, err := json.Marshal(struct {
		Messages []messageGroup `json:"messages"`
	}{[]messageGroup{{InstancePtr: "#/", Messages: []message{m}}}})
	if err != nil {
		panic(fmt.Sprintf("hooks: encode messages: %v", err)) // plain strings and numbers always encode
	}
	return b
}

var channelWords = map[string]string{"email": "email address", "sms": "phone number"}

// blockMessage is the message for a blocked login.
func blockMessage(d *flows.Decision) message {
	ctx := map[string]any{"reason": d.Reason}
	m := message{Type: "error", Context: ctx}
	if d.RetryAfter > 0 {
		ctx["retry_after"] = int((d.RetryAfter + time.Second - 1) / time.Second)
	}
	if d.ChallengeID != "" {
		ctx["challenge_id"] = d.ChallengeID
	}
	if d.Channel != "" {
		ctx["channel"] = string(d.Channel)
		ctx["destination"] = d.Destination
	}
	if !d.ExpiresAt.IsZero() {
		ctx["expires_at"] = d.ExpiresAt.UTC().Format(time.RFC3339)
	}
	switch d.Reason {
	case flows.ReasonVerificationRequired:
		m.ID = MsgVerificationRequired
		m.Text = fmt.Sprintf("Confirm your %s: enter the code we sent to %s.", channelWords[string(d.Channel)], d.Destination)
		if d.FallbackFrom != "" {
			ctx["fallback_from_channel"] = string(d.FallbackFrom)
			ctx["fallback_from_destination"] = d.FallbackDestination
			m.Text = fmt.Sprintf("We could not send a code to your %s %s, so we sent one to your %s %s. Enter it to confirm your account.",
				channelWords[string(d.FallbackFrom)], d.FallbackDestination, channelWords[string(d.Channel)], d.Destination)
		}
	case flows.ReasonNewDevice:
		m.ID = MsgNewDevice
		m.Text = fmt.Sprintf("You are signing in on a new device. Enter the code we sent to %s to continue.", d.Destination)
		if d.FallbackFrom != "" {
			ctx["fallback_from_channel"] = string(d.FallbackFrom)
			ctx["fallback_from_destination"] = d.FallbackDestination
			m.Text = fmt.Sprintf("You are signing in on a new device. We could not send a code to %s, so we sent one to %s. Enter it to continue.",
				d.FallbackDestination, d.Destination)
		}
	case flows.ReasonUndeliverable:
		m.ID = MsgUndeliverable
		m.Text = fmt.Sprintf("We cannot send a code to your %s %s. Add another email address or phone number to your account, or contact support.",
			channelWords[string(d.Channel)], d.Destination)
	case flows.ReasonNoAddress:
		m.ID = MsgNoAddress
		m.Text = "Your account has no email address or phone number that can be verified. Please contact support."
	case flows.ReasonLocked:
		m.ID = MsgLocked
		if d.RetryAfter > 0 {
			m.Text = fmt.Sprintf("Too many failed attempts. Try again in %s.", human(d.RetryAfter))
		} else {
			m.Text = "Your account is locked after too many failed attempts. Please contact support."
		}
	case flows.ReasonInactive:
		m.ID = MsgInactive
		m.Text = "This account is disabled."
	case flows.ReasonRateLimited:
		m.ID = MsgRateLimited
		m.Text = fmt.Sprintf("We sent you a code a moment ago. Try again in %s.", human(d.RetryAfter))
	}
	return m
}

func unavailableMessage() message {
	return message{ID: MsgUnavailable, Type: "error", Text: "We could not check your account right now. Please try again in a moment.",
		Context: map[string]any{"reason": "unavailable"}}
}

func badRequestMessage(detail string) message {
	return message{ID: MsgBadRequest, Type: "error", Text: "The sign-in service received a request it cannot read. Please contact support.",
		Context: map[string]any{"reason": "bad_request", "detail": detail}}
}

// human writes a duration for people: "45 seconds", "2 minutes".
func human(d time.Duration) string {
	s := int((d + time.Second - 1) / time.Second)
	switch {
	case s <= 1:
		return "1 second"
	case s < 120:
		return fmt.Sprintf("%d seconds", s)
	default:
		return fmt.Sprintf("%d minutes", (s+59)/60)
	}
}
