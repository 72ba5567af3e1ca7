package authz_test

import (
	"fmt"
	"net/http"
	"time"

	"github.com/vigil-auth/vigil/authz"
)

// Protect an application's routes: only sessions of verified identities
// reach the handler, which learns whose session it is.
func ExampleChecker_Middleware() {
	check := authz.New(authz.Config{
		VigilURL: "http://127.0.0.1:4480", // Vigil's public listener
		CacheTTL: 5 * time.Second,         // optional: one call per session per 5 s
	})

	mux := http.NewServeMux()
	mux.Handle("GET /account", check.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := authz.IdentityID(r.Context())
		fmt.Fprintf(w, "hello, identity %s\n", id)
	})))
	// Public pages stay outside the middleware.
	mux.HandleFunc("GET /", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "welcome")
	})

	_ = http.ListenAndServe // e.g. http.ListenAndServe("127.0.0.1:8080", mux)
	fmt.Println("ready")
	// Output: ready
}
