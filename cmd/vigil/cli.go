package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-auth/vigil"
	"github.com/vigil-auth/vigil/flows"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// usageError marks a mistake on the command line, answered with exit 2.
type usageError struct{ error }

// Run executes the command line args and returns the exit code. Nothing
// in it reads the process environment or exits: main does that.
func Run(ctx context.Context, args []string, env Env, stdout, stderr io.Writer) int {
	root := newRootCmd(env, stdout, stderr) //nolint:contextcheck // commands get ctx from ExecuteContext below
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(stderr, "vigil: %s\n", oneLine(err))
		var ue usageError
		if errors.As(err, &ue) || isCobraUsageError(err) {
			fmt.Fprintln(stderr, "Run 'vigil --help' for usage.")
			return exitUsage
		}
		return exitError
	}
	return exitOK
}

// isCobraUsageError recognises the errors cobra returns for unknown
// commands and flags, which it does not type.
func isCobraUsageError(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "flag needs an argument", "invalid argument", "accepts ", "requires at least", "required flag"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

type cli struct {
	env        Env
	stdout     io.Writer
	stderr     io.Writer
	configFile string
}

func newRootCmd(env Env, stdout, stderr io.Writer) *cobra.Command {
	c := &cli{env: env, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "vigil",
		Short: "Email and phone verification, lockout and audit beside Ory Kratos",
		Long: `Vigil verifies email addresses and phone numbers for Ory Kratos identities,
throttles and locks out abuse, and keeps a tamper-evident audit trail.

Configuration comes from vigil.yml (--config), then VIGIL_* environment
variables. Start locally with: vigil serve --dev`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.PersistentFlags().StringVarP(&c.configFile, "config", "c", "vigil.yml", "configuration file (optional when it is the default and absent)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		c.serveCmd(),
		c.migrateCmd(),
		c.versionCmd(),
		c.verificationsCmd(),
		c.templatesCmd(),
		c.devicesCmd(),
	)
	return root
}

// scope says which options a command needs; only their problems stop it.
type scope int

const (
	scopeServe    scope = iota // everything
	scopeDatabase              // dsn, database.*, log.*
	scopeAdmin                 // all but listeners and API keys
)

func (c *cli) loadConfig(cmd *cobra.Command, dev bool, sc scope) (*Config, error) {
	lookup := c.env.Lookup
	if lookup == nil {
		lookup = func(string) (string, bool) { return "", false }
	}
	l, loadErr := LoadConfig(LoadOptions{
		File:         c.configFile,
		FileRequired: cmd.Flags().Changed("config"),
		LookupEnv:    lookup,
		Environ:      c.env.Environ,
		Dev:          dev,
	})
	if l == nil {
		return nil, loadErr
	}
	cfg := &l.Config
	var generated []GeneratedSecret
	if dev {
		var err error
		if generated, err = cfg.ApplyDev(rand.Reader); err != nil {
			return nil, err
		}
	}
	// A file or variable that cannot be read is an error for every
	// command; what Validate finds only for the options the command uses.
	if err := MergeProblems(loadErr, filterProblems(cfg.Validate(), sc)); err != nil {
		return nil, err
	}
	for _, name := range l.UnknownEnv {
		fmt.Fprintf(c.stderr, "vigil: warning: environment variable %s matches no option; ignored\n", name)
	}
	// Printed only once the configuration is known to be good: secrets of
	// a run that never starts are of no use to anyone.
	WriteGenerated(c.stderr, generated)
	return cfg, nil
}

func filterProblems(err error, sc scope) error {
	var ce *ConfigError
	if !errors.As(err, &ce) || sc == scopeServe {
		return err
	}
	var keep problems
	for _, p := range ce.Problems {
		switch sc {
		case scopeDatabase:
			if p.Path == "dsn" || strings.HasPrefix(p.Path, "database.") || strings.HasPrefix(p.Path, "log.") {
				keep = append(keep, p)
			}
		case scopeAdmin:
			if !strings.HasPrefix(p.Path, "serve.") && p.Path != "admin.api_key" && p.Path != "hooks.api_key" {
				keep = append(keep, p)
			}
		}
	}
	return keep.err()
}

func (c *cli) serveCmd() *cobra.Command {
	var migrate, dev bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the public and admin HTTP listeners and the delivery queue",
		Long: `Run the public and admin HTTP listeners and the delivery queue until SIGINT
or SIGTERM, then shut down gracefully.

--dev runs with no configuration at all: a SQLite file (sqlite://vigil.db),
console delivery that shows codes, generated secrets, migrations applied.
Never use --dev in production.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.loadConfig(cmd, dev, scopeServe)
			if err != nil {
				return err
			}
			return c.serve(cmd.Context(), *cfg, migrate || dev)
		},
	}
	cmd.Flags().BoolVar(&migrate, "migrate", false, "apply pending database migrations before serving")
	cmd.Flags().BoolVar(&dev, "dev", false, "development mode: defaults for everything, codes shown on the console, migrations applied")
	return cmd
}

func (c *cli) serve(ctx context.Context, cfg Config, migrate bool) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	m := NewMain(cfg, c.stdout, c.stderr)
	if err := m.Serve(ctx, OpenOptions{Migrate: migrate}); err != nil {
		if cerr := m.Close(context.WithoutCancel(ctx)); cerr != nil {
			m.Logger.Warn("cleanup after failed start", "err", cerr)
		}
		return err
	}
	if cfg.Dev {
		c.devBanner(m)
	}

	var serveErr error
	select {
	case <-ctx.Done():
		m.Logger.Info("shutting down", "timeout", cfg.Serve.ShutdownTimeout.String())
	case serveErr = <-m.Done():
		m.Logger.Error("listener failed; shutting down", "err", serveErr)
	}
	// From here a second signal kills the process at once.
	stop()
	err := m.Close(context.WithoutCancel(ctx))
	if err == nil && serveErr == nil {
		m.Logger.Info("stopped")
	}
	return errors.Join(serveErr, err)
}

func (c *cli) devBanner(m *Main) {
	fmt.Fprintf(c.stderr, `
vigil --dev is running (never use --dev in production)
  public API: http://%s
  admin API:  http://%s   (Authorization: Bearer <VIGIL_ADMIN_API_KEY>)
  database:   %s
  codes and links are printed on standard output

`, m.PublicAddr, m.AdminAddr, redactDSN(m.Config.DSN))
}

func (c *cli) migrateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply or inspect database migrations",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError{errors.New("migrate needs a subcommand: up or status")}
		},
	}
	up := &cobra.Command{
		Use:   "up",
		Short: "Apply every pending migration",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withDatabase(cmd, func(ctx context.Context, m *Main) error {
				before, err := PendingMigrations(ctx, m.DB)
				if err != nil {
					return err
				}
				if err := m.DB.Migrate(ctx); err != nil {
					return fmt.Errorf("apply migrations: %w", err)
				}
				if len(before) == 0 {
					fmt.Fprintln(c.stdout, "database schema is up to date; nothing to apply")
					return nil
				}
				for _, mg := range before {
					fmt.Fprintf(c.stdout, "applied %04d %s\n", mg.Version, mg.Name)
				}
				return nil
			})
		},
	}
	status := &cobra.Command{
		Use:   "status",
		Short: "List migrations and whether each is applied",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withDatabase(cmd, func(ctx context.Context, m *Main) error {
				all, err := m.DB.MigrationStatus(ctx)
				if err != nil {
					return fmt.Errorf("read migration status: %w", err)
				}
				tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "VERSION\tNAME\tAPPLIED")
				pending := 0
				for _, mg := range all {
					applied := "pending"
					if mg.AppliedAt != nil {
						applied = mg.AppliedAt.UTC().Format(time.RFC3339)
					} else {
						pending++
					}
					fmt.Fprintf(tw, "%04d\t%s\t%s\n", mg.Version, mg.Name, applied)
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				if pending > 0 {
					fmt.Fprintf(c.stdout, "\n%d pending: run `vigil migrate up`\n", pending)
				}
				return nil
			})
		},
	}
	cmd.AddCommand(up, status)
	return cmd
}

// withDatabase opens only the database (no secrets needed) and runs fn.
func (c *cli) withDatabase(cmd *cobra.Command, fn func(context.Context, *Main) error) error {
	cfg, err := c.loadConfig(cmd, false, scopeDatabase)
	if err != nil {
		return err
	}
	m := NewMain(*cfg, c.stdout, c.stderr)
	ctx := cmd.Context()
	if m.DB, err = OpenDatabase(ctx, *cfg, m.Logger); err != nil {
		return err
	}
	defer m.CloseDB()
	return fn(ctx, m)
}

// withService opens the database and the verification service, as serve
// does but without listeners or queue, and runs fn.
func (c *cli) withService(cmd *cobra.Command, fn func(context.Context, *flows.Service) (any, error)) error {
	cfg, err := c.loadConfig(cmd, false, scopeAdmin)
	if err != nil {
		return err
	}
	m := NewMain(*cfg, c.stdout, c.stderr)
	ctx := cmd.Context()
	defer m.CloseDB()
	if err := m.Open(ctx, OpenOptions{}); err != nil {
		return err
	}
	out, err := fn(ctx, m.Service)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func (c *cli) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(*cobra.Command, []string) {
			fmt.Fprintf(c.stdout, "vigil %s (commit %s, %s)\n", version, commit, runtime.Version())
		},
	}
}

func (c *cli) verificationsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "verifications",
		Aliases: []string{"verification"},
		Short:   "Administer verifications directly on the configured database",
		Long: `Administer verifications directly on the configured database, with the
configured secrets. Output is JSON. Messages queued here are delivered by a
running 'vigil serve' on the same database.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return usageError{errors.New("verifications needs a subcommand: start, get, verify or unlock")}
		},
	}

	var identity, address, channel, method string
	start := &cobra.Command{
		Use:   "start --identity ID --address ADDRESS --channel email|sms [--method code|link]",
		Short: "Start (or restart) verification of an address",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ch := vigil.Channel(channel)
			if !ch.Valid() {
				return usageError{fmt.Errorf("--channel must be email or sms, got %q", channel)}
			}
			mt := vigil.Method(method)
			if !mt.Valid() {
				return usageError{fmt.Errorf("--method must be code or link, got %q", method)}
			}
			return c.withService(cmd, func(ctx context.Context, svc *flows.Service) (any, error) {
				st, err := svc.Start(ctx, flows.StartRequest{
					IdentityID: identity,
					Address:    address,
					Channel:    ch,
					Method:     mt,
					Purpose:    vigil.PurposeVerifyAddress,
					Actor:      "admin",
				})
				if err != nil {
					return nil, err
				}
				return map[string]any{"id": st.ID, "expires_at": st.ExpiresAt}, nil
			})
		},
	}
	start.Flags().StringVar(&identity, "identity", "", "Kratos identity ID (required)")
	start.Flags().StringVar(&address, "address", "", "email address or E.164 phone number (required)")
	start.Flags().StringVar(&channel, "channel", "", "email or sms (required)")
	start.Flags().StringVar(&method, "method", string(vigil.MethodCode), "code or link")
	for _, f := range []string{"identity", "address", "channel"} {
		if err := start.MarkFlagRequired(f); err != nil {
			panic(err)
		}
	}

	get := &cobra.Command{
		Use:   "get ID",
		Short: "Show one verification",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withService(cmd, func(ctx context.Context, svc *flows.Service) (any, error) {
				return svc.GetVerification(ctx, args[0])
			})
		},
	}
	verify := &cobra.Command{
		Use:   "verify ID CODE",
		Short: "Submit a code for a verification",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withService(cmd, func(ctx context.Context, svc *flows.Service) (any, error) {
				return svc.CheckCode(ctx, args[0], args[1], "")
			})
		},
	}
	unlock := &cobra.Command{
		Use:   "unlock IDENTITY_ID",
		Short: "Lift every lock of an identity, hard locks included",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withService(cmd, func(ctx context.Context, svc *flows.Service) (any, error) {
				if err := svc.Unlock(ctx, args[0], "admin"); err != nil {
					return nil, err
				}
				return svc.IdentityStatus(ctx, args[0])
			})
		},
	}
	cmd.AddCommand(start, get, verify, unlock)
	return cmd
}

func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("%s takes %d argument(s), got %d: vigil verifications %s", cmd.Name(), n, len(args), cmd.Use)}
		}
		return nil
	}
}
