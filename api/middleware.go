package api

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/vigil-auth/vigil"
)

type ctxKey int

const requestIDKey ctxKey = iota

// requestID returns the request's id, set by the requestID middleware.
func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// saneRequestID accepts an incoming X-Request-Id only when it is short and
// made of characters that are safe in logs and headers, so a client cannot
// forge log lines or blow up log storage through it.
func saneRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, c := range []byte(id) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-', c == '_', c == '.', c == ':', c == '/', c == '+', c == '=':
		default:
			return false
		}
	}
	return true
}

func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-ID")
		if !saneRequestID(id) {
			id = uuid.NewString()
		}
		w.Header().Set("X-Request-ID", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey, id)))
	})
}

// statusWriter remembers the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// routePattern is the chi pattern that matched, or "unmatched": never the
// raw path, so metrics labels stay few and no id ends up in them.
func routePattern(r *http.Request) string {
	if rctx := chi.RouteContext(r.Context()); rctx != nil {
		if p := rctx.RoutePattern(); p != "" {
			return p
		}
	}
	return "unmatched"
}

// logPath is the request path for the access log: never the query string
// (link tokens travel there) and capped in length.
func logPath(r *http.Request) string {
	p := r.URL.Path
	if len(p) > 256 {
		p = p[:256] + "..."
	}
	return p
}

// observe writes the access log line and the request-duration metric.
func (s *Server) observe(listener string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			sw := &statusWriter{ResponseWriter: w}
			next.ServeHTTP(sw, r)
			took := time.Since(start)
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			route := routePattern(r)
			s.metrics.observeHTTP(listener, r.Method, route, status, took)
			level := slog.LevelInfo
			if status >= 500 {
				level = slog.LevelWarn
			}
			s.log.Log(r.Context(), level, "http request",
				"listener", listener,
				"method", r.Method,
				"path", logPath(r),
				"route", route,
				"status", status,
				"bytes", sw.bytes,
				"duration", took,
				"request_id", requestID(r.Context()))
		})
	}
}

// recoverer turns a panic into a logged 500, so one bad request cannot take
// the listener down.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler { //nolint:errorlint // net/http compares it the same way
				panic(v)
			}
			s.log.ErrorContext(ctx, "panic serving request",
				"request_id", requestID(ctx),
				"method", r.Method,
				"route", routePattern(r),
				"panic", v,
				"stack", string(debug.Stack()))
			if sw, ok := w.(*statusWriter); ok && sw.status != 0 {
				return
			}
			s.writeJSON(w, r, http.StatusInternalServerError, errorBody{Error: errorDetail{Code: vigil.EINTERNAL, Message: internalMessage}})
		}()
		next.ServeHTTP(w, r)
	})
}

// limitBody refuses bodies over maxBodyBytes: at once when Content-Length
// says so, else when reading crosses the limit.
func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > maxBodyBytes {
			s.fail(w, r, errTooLarge(), false)
			return
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		}
		next.ServeHTTP(w, r)
	})
}

// baseHeaders are right for every API response; pages tighten them further
// (ui.SetHeaders).
func baseHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		next.ServeHTTP(w, r)
	})
}

// clientIP is the address rate limits count against: the first hop of
// X-Forwarded-For when the operator says a trusted proxy sets it, else the
// peer address. Anything unparsable counts as no address.
func (s *Server) clientIP(r *http.Request) string {
	if s.cfg.TrustProxyHeaders {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			first, _, _ := strings.Cut(xff[0], ",")
			if a, err := netip.ParseAddr(strings.TrimSpace(first)); err == nil {
				return a.Unmap().WithZone("").String()
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap().WithZone("").String()
	}
	return ""
}
