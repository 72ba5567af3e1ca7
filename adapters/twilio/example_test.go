package twilio_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"

	"github.com/vigil-auth/vigil/adapters/twilio"
	"github.com/vigil-auth/vigil/internal/twiliotest"
)

// A status callback handler: Twilio posts to the StatusCallback URL the
// Sender was configured with; the handler refuses what is not signed and
// passes on what is news.
func ExampleCallbacks_Parse() {
	const authToken = "the account's Auth Token"
	callbacks, err := twilio.NewCallbacks(twilio.CallbackConfig{AuthToken: authToken})
	if err != nil {
		panic(err)
	}
	var publicURL string // as given to twilio.Config.StatusCallback

	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		update, ok, err := callbacks.Parse(r, publicURL)
		if _, forged := errors.AsType[*twilio.SignatureError](err); forged {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if ok {
			fmt.Println(update.Provider, update.ProviderID, update.Status, update.ErrorCode)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	publicURL = "http://" + srv.Listener.Addr().String() + "/twilio/status"
	srv.Start()
	defer srv.Close()

	// What Twilio posts when a carrier could not deliver a message.
	params := url.Values{
		"AccountSid":    {"AC2f9c6a0e4b7d41c38a5e90b1d6f3c7a2"},
		"ApiVersion":    {"2010-04-01"},
		"ErrorCode":     {"30003"},
		"From":          {"+15017122661"},
		"MessageSid":    {"SM8d1e4b0c6f2a47e9b3c5d7f9a1e3c5b7"},
		"MessageStatus": {"undelivered"},
		"To":            {"+4915123456780"},
	}
	status, err := twiliotest.Post(context.Background(), twiliotest.Callback{URL: publicURL, AuthToken: authToken, Params: params})
	fmt.Println(status, err)

	forged, err := twiliotest.Post(context.Background(), twiliotest.Callback{URL: publicURL, AuthToken: "guessed", Params: params})
	fmt.Println(forged, err)
	// Output:
	// twilio SM8d1e4b0c6f2a47e9b3c5d7f9a1e3c5b7 undelivered 30003
	// 204 <nil>
	// 403 <nil>
}
