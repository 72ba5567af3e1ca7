package bench

import (
	"context"
	"sync"

	"github.com/jackc/pgx/v5"
)

// statement is one SQL statement as a store issued it.
type statement struct {
	sql  string
	args []any
}

// op is the statements of one operation, in order, begin and commit
// included.
type op []statement

type recorderKey struct{}

// recorder collects the statements issued with a context that carries it.
type recorder struct {
	mu    sync.Mutex
	stmts op
}

func withRecorder(ctx context.Context, r *recorder) context.Context {
	return context.WithValue(ctx, recorderKey{}, r)
}

// tracer is a pgx.QueryTracer that hands statements to the context's
// recorder, if any.
type tracer struct{}

func (tracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if r, ok := ctx.Value(recorderKey{}).(*recorder); ok {
		r.mu.Lock()
		r.stmts = append(r.stmts, statement{sql: d.SQL, args: append([]any(nil), d.Args...)})
		r.mu.Unlock()
	}
	return ctx
}

func (tracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
