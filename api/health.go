package api

import (
	"context"
	"net/http"
	"time"
)

const readyTimeout = 2 * time.Second

type healthStatus struct {
	Status string `json:"status"`
}

// alive answers as long as the process serves HTTP.
func (s *Server) alive(w http.ResponseWriter, r *http.Request) error {
	s.writeJSON(w, r, http.StatusOK, healthStatus{Status: "ok"})
	return nil
}

// ready answers 200 only when the dependencies answer within two seconds,
// so a load balancer stops sending traffic to a replica that lost its
// database.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if err := s.cfg.Ready(ctx); err != nil {
			s.log.WarnContext(r.Context(), "not ready", "request_id", requestID(r.Context()), "err", err)
			s.writeJSON(w, r, http.StatusServiceUnavailable, healthStatus{Status: "unavailable"})
			return nil
		}
	}
	s.writeJSON(w, r, http.StatusOK, healthStatus{Status: "ok"})
	return nil
}
