package main

import (
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-auth/vigil/flows"
)

const (
	testSecret  = "0123456789abcdef0123456789abcdef-one"
	testSecret2 = "0123456789abcdef0123456789abcdef-two"
	testKey     = "admin-key-0123456789"
	testHookKey = "hooks-key-0123456789"
)

func envOf(kv map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := kv[k]
		return v, ok
	}
}

// essentials is the environment a production start needs.
func essentials() map[string]string {
	return map[string]string{
		"VIGIL_SECRETS_SYSTEM": testSecret,
		"VIGIL_ADMIN_API_KEY":  testKey,
		"VIGIL_HOOKS_API_KEY":  testHookKey,
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "vigil.yml")
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

func load(t *testing.T, file string, env map[string]string) (*Config, error) {
	t.Helper()
	l, err := LoadConfig(LoadOptions{File: file, FileRequired: file != "", LookupEnv: envOf(env)})
	if err != nil {
		return nil, err
	}
	return &l.Config, nil
}

func problemsOf(t *testing.T, err error) []string {
	t.Helper()
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	out := make([]string, len(ce.Problems))
	for i, p := range ce.Problems {
		out[i] = p.String()
	}
	return out
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := load(t, "", essentials())
	require.NoError(t, err)
	require.NoError(t, c.Validate())

	require.Equal(t, "sqlite://vigil.db", c.DSN)
	require.Equal(t, "127.0.0.1", c.Serve.Public.Host)
	require.Equal(t, 4480, c.Serve.Public.Port)
	require.Equal(t, "http://127.0.0.1:4480", c.Serve.Public.BaseURL)
	require.Equal(t, "127.0.0.1", c.Serve.Admin.Host)
	require.Equal(t, 4481, c.Serve.Admin.Port)
	require.False(t, c.Serve.TrustProxyHeaders)
	require.Equal(t, 30*time.Second, c.Serve.ShutdownTimeout)

	v := c.Verification
	require.True(t, v.EnableEmailVerification)
	require.False(t, v.EnableSMSVerification)
	require.True(t, v.VerificationRequiredOnLogin)
	require.Equal(t, 15, v.VerificationCodeExpiration)
	require.Equal(t, 10, v.SMSCodeExpirationCap)
	require.Equal(t, 3, v.MaxVerificationRetries)
	require.Equal(t, "any", v.Require)
	require.Equal(t, 6, v.CodeLength)
	require.Equal(t, 24*time.Hour, v.LinkLifespan)
	require.Equal(t, ResendConfig{Cooldown: time.Minute, PerDestination10m: 5, PerDestinationHour: 10, PerIdentityHour: 20, PerIPHour: 30}, v.Resend)
	require.Equal(t, LockoutConfig{Base: time.Minute, Max: 15 * time.Minute, HardLockAfter: 100}, v.Lockout)
	require.Equal(t, 30, v.CheckPerIPMinute)

	require.Equal(t, "console", c.Delivery.Email.Provider)
	require.Equal(t, "console", c.Delivery.SMS.Provider)
	require.Equal(t, "info", c.Log.Level)
	require.Equal(t, "json", c.Log.Format)
	require.Equal(t, 10, c.Database.MaxConns)
	require.False(t, c.Dev)
}

// The defaults here and the engine's own must tell the same story.
func TestFlowsMappingOfDefaults(t *testing.T) {
	t.Parallel()
	c, err := load(t, "", essentials())
	require.NoError(t, err)
	got := c.Flows()
	want := flows.Defaults()
	require.Equal(t, want, got)
}

func TestFlowsMapping(t *testing.T) {
	t.Parallel()
	c, err := load(t, writeFile(t, `
serve:
  public:
    base_url: https://verify.example.com/
verification:
  enable_sms_verification: true
  verification_code_expiration: 20
  sms_code_expiration_cap: 5
  max_verification_retries: 5
  require: all
  code_length: 8
  link_lifespan: 2h
  resend: {cooldown: 30s, per_destination_10m: 2, per_destination_hour: 3, per_identity_hour: 4, per_ip_hour: 6}
  lockout: {base: 2m, max: 1h, hard_lock_after: 50}
  check_per_ip_minute: 7
`), essentials())
	require.NoError(t, err)
	require.NoError(t, c.Validate())
	f := c.Flows()
	require.True(t, f.EnableEmail)
	require.True(t, f.EnableSMS)
	require.Equal(t, flows.RequireAll, f.Require)
	require.Equal(t, 8, f.CodeLength)
	require.Equal(t, 20*time.Minute, f.CodeTTL)
	require.Equal(t, 5*time.Minute, f.SMSCodeTTL)
	require.Equal(t, 2*time.Hour, f.LinkTTL)
	require.Equal(t, 5, f.MaxAttempts)
	require.Equal(t, "https://verify.example.com", f.PublicURL)
	require.Equal(t, 7, f.CheckPerIP)
	require.Equal(t, flows.ResendLimits{Cooldown: 30 * time.Second, PerDestination: 2, PerDestHour: 3, PerIdentityHour: 4, PerIPHour: 6}, f.Resend)
	require.Equal(t, flows.LockoutRules{Base: 2 * time.Minute, Max: time.Hour, HardAfter: 50}, f.Lockout)
	require.False(t, f.Dev)
	require.False(t, f.ShowCodes)

	// An expiration shorter than the cap is used for SMS as it is.
	c.Verification.VerificationCodeExpiration = 3
	require.Equal(t, 3*time.Minute, c.Flows().SMSCodeTTL)
}

func TestFile(t *testing.T) {
	t.Parallel()
	file := writeFile(t, `
dsn: postgres://vigil@db:5432/vigil
serve:
  public: {host: 0.0.0.0, port: 8080}
  admin: {host: 10.0.0.1, port: 8081}
  trust_proxy_headers: true
  shutdown_timeout: 5s
secrets:
  system: [`+testSecret2+`, `+testSecret+`]
admin: {api_key: `+testKey+`}
hooks: {api_key: `+testHookKey+`}
verification:
  enable_email_verification: false
  enable_sms_verification: true
  verification_required_on_login: false
  require: phone
delivery:
  email:
    provider: smtp
    smtp: {url: "smtp://u:p@mail:587", from: "Vigil <no-reply@example.com>"}
  sms:
    provider: http
    http:
      url: https://sms.example.com/send
      headers: {X-Tenant: acme}
      bearer_token: tok
log: {level: debug, format: text}
database: {max_conns: 25}
`)
	c, err := load(t, file, nil)
	require.NoError(t, err)
	require.NoError(t, c.Validate())
	require.Equal(t, "postgres://vigil@db:5432/vigil", c.DSN)
	require.Equal(t, "0.0.0.0", c.Serve.Public.Host)
	require.Equal(t, 8080, c.Serve.Public.Port)
	require.Equal(t, "http://127.0.0.1:8080", c.Serve.Public.BaseURL, "base_url follows the public port")
	require.Equal(t, ListenerConfig{Host: "10.0.0.1", Port: 8081}, c.Serve.Admin)
	require.True(t, c.Serve.TrustProxyHeaders)
	require.Equal(t, 5*time.Second, c.Serve.ShutdownTimeout)
	require.Equal(t, []string{testSecret2, testSecret}, c.Secrets.System)
	require.Equal(t, testKey, c.Admin.APIKey)
	require.Equal(t, testHookKey, c.Hooks.APIKey)
	require.False(t, c.Verification.EnableEmailVerification)
	require.True(t, c.Verification.EnableSMSVerification)
	require.False(t, c.Verification.VerificationRequiredOnLogin)
	require.Equal(t, 15, c.Verification.VerificationCodeExpiration, "unset options keep their default")
	require.Equal(t, "smtp", c.Delivery.Email.Provider)
	require.Equal(t, SMTPConfig{URL: "smtp://u:p@mail:587", From: "Vigil <no-reply@example.com>"}, c.Delivery.Email.SMTP)
	require.Equal(t, HTTPSMSConfig{URL: "https://sms.example.com/send", Headers: map[string]string{"X-Tenant": "acme"}, BearerToken: "tok"}, c.Delivery.SMS.HTTP)
	require.Equal(t, LogConfig{Level: "debug", Format: "text"}, c.Log)
	require.Equal(t, 25, c.Database.MaxConns)
}

func TestFileErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		yaml string
		want []string
	}{
		{
			name: "unknown keys at any depth",
			yaml: "serve:\n  pubic:\n    port: 1\nverification:\n  resend:\n    per_hour: 3\nfoo: bar\n",
			want: []string{
				"serve.pubic: unknown option (line 2)",
				"verification.resend.per_hour: unknown option (line 6)",
				"foo: unknown option (line 7)",
			},
		},
		{
			name: "wrong types",
			yaml: "serve:\n  public:\n    port: eighty\n  shutdown_timeout: 30\nverification:\n  enable_email_verification: maybe\n",
			want: []string{"serve.public.port:", "serve.shutdown_timeout:", "verification.enable_email_verification:"},
		},
		{
			name: "bad duration",
			yaml: "verification:\n  link_lifespan: one day\n",
			want: []string{"verification.link_lifespan:"},
		},
		{
			name: "a section that is not a mapping",
			yaml: "serve: 4480\n",
			want: []string{"serve: must be a mapping of options (line 1)"},
		},
		{
			name: "not yaml",
			yaml: "serve: [\n",
			want: []string{"(file):"},
		},
		{
			name: "set twice",
			yaml: "dsn: sqlite://a.db\ndsn: sqlite://b.db\n",
			want: []string{"dsn: "},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := load(t, writeFile(t, tt.yaml), essentials())
			got := problemsOf(t, err)
			require.Len(t, got, len(tt.want), "%q", got)
			for i, w := range tt.want {
				require.True(t, strings.HasPrefix(got[i], w), "problem %d: got %q, want prefix %q", i, got[i], w)
			}
		})
	}
}

func TestEmptyAndMissingFile(t *testing.T) {
	t.Parallel()
	for _, content := range []string{"", "\n# nothing\n", "---\n"} {
		c, err := load(t, writeFile(t, content), essentials())
		require.NoError(t, err)
		require.Equal(t, DefaultConfig().DSN, c.DSN)
	}

	missing := filepath.Join(t.TempDir(), "vigil.yml")
	l, err := LoadConfig(LoadOptions{File: missing, LookupEnv: envOf(essentials())})
	require.NoError(t, err, "the default file may be absent")
	require.Empty(t, l.File)

	_, err = LoadConfig(LoadOptions{File: missing, FileRequired: true})
	require.ErrorIs(t, err, os.ErrNotExist, "a file named with --config must exist")
}

func TestEnvOverrides(t *testing.T) {
	t.Parallel()
	file := writeFile(t, `
dsn: sqlite://from-file.db
serve: {public: {port: 9000}}
verification: {max_verification_retries: 4, code_length: 7}
`)
	env := map[string]string{
		"VIGIL_DSN":                                       "postgresql://u@h/db",
		"VIGIL_ADMIN_API_KEY":                             testKey,
		"VIGIL_HOOKS_API_KEY":                             testHookKey,
		"VIGIL_SECRETS_SYSTEM":                            testSecret2 + ", " + testSecret,
		"VIGIL_SERVE_PUBLIC_PORT":                         "9100",
		"VIGIL_SERVE_PUBLIC_BASE_URL":                     "https://v.example.com",
		"VIGIL_SERVE_TRUST_PROXY_HEADERS":                 "true",
		"VIGIL_SERVE_SHUTDOWN_TIMEOUT":                    "3s",
		"VIGIL_VERIFICATION_MAX_VERIFICATION_RETRIES":     "5",
		"VIGIL_VERIFICATION_ENABLE_SMS_VERIFICATION":      "1",
		"VIGIL_VERIFICATION_RESEND_PER_DESTINATION_10M":   "2",
		"VIGIL_VERIFICATION_LOCKOUT_BASE":                 "90s",
		"VIGIL_DELIVERY_SMS_HTTP_HEADERS":                 "X-A=1, X-B=two=2",
		"VIGIL_DELIVERY_SMS_PROVIDER":                     "http",
		"VIGIL_DELIVERY_SMS_HTTP_URL":                     "https://sms.example.com",
		"VIGIL_VERIFICATION_VERIFICATION_CODE_EXPIRATION": "9",
	}
	c, err := load(t, file, env)
	require.NoError(t, err)
	require.NoError(t, c.Validate())
	require.Equal(t, "postgresql://u@h/db", c.DSN, "env beats file")
	require.Equal(t, 9100, c.Serve.Public.Port)
	require.Equal(t, "https://v.example.com", c.Serve.Public.BaseURL)
	require.True(t, c.Serve.TrustProxyHeaders)
	require.Equal(t, 3*time.Second, c.Serve.ShutdownTimeout)
	require.Equal(t, []string{testSecret2, testSecret}, c.Secrets.System)
	require.Equal(t, 5, c.Verification.MaxVerificationRetries)
	require.Equal(t, 7, c.Verification.CodeLength, "file value survives where env is silent")
	require.True(t, c.Verification.EnableSMSVerification)
	require.Equal(t, 2, c.Verification.Resend.PerDestination10m)
	require.Equal(t, 90*time.Second, c.Verification.Lockout.Base)
	require.Equal(t, 9, c.Verification.VerificationCodeExpiration)
	require.Equal(t, map[string]string{"X-A": "1", "X-B": "two=2"}, c.Delivery.SMS.HTTP.Headers)
}

func TestEnvErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	env := essentials()
	env["VIGIL_SERVE_ADMIN_PORT"] = "http"
	env["VIGIL_SERVE_SHUTDOWN_TIMEOUT"] = "30"
	env["VIGIL_VERIFICATION_ENABLE_EMAIL_VERIFICATION"] = "yes please"
	env["VIGIL_DELIVERY_SMS_HTTP_HEADERS"] = "novalue"
	_, err := load(t, "", env)
	got := problemsOf(t, err)
	require.Len(t, got, 4, "%q", got)
	joined := strings.Join(got, "\n")
	for _, want := range []string{
		`serve.admin.port: environment variable VIGIL_SERVE_ADMIN_PORT: "http" is not an integer`,
		`serve.shutdown_timeout: environment variable VIGIL_SERVE_SHUTDOWN_TIMEOUT: "30" is not a duration`,
		`verification.enable_email_verification: environment variable VIGIL_VERIFICATION_ENABLE_EMAIL_VERIFICATION: "yes please" is not a boolean`,
		`delivery.sms.http.headers: environment variable VIGIL_DELIVERY_SMS_HTTP_HEADERS:`,
	} {
		require.Contains(t, joined, want)
	}
}

func TestEnvNames(t *testing.T) {
	t.Parallel()
	names := envNames()
	// Every leaf has its derived name, and no two leaves share one.
	seen := map[string]string{}
	for _, l := range Leaves() {
		n := EnvName(l.Path)
		require.Contains(t, names, n)
		require.Empty(t, seen[n], "%s and %s both map to %s", seen[n], l.Path, n)
		seen[n] = l.Path
	}
	for name, path := range map[string]string{
		"VIGIL_DSN":                                   "dsn",
		"VIGIL_ADMIN_API_KEY":                         "admin.api_key",
		"VIGIL_HOOKS_API_KEY":                         "hooks.api_key",
		"VIGIL_SECRETS_SYSTEM":                        "secrets.system",
		"VIGIL_VERIFICATION_MAX_VERIFICATION_RETRIES": "verification.max_verification_retries",
		"VIGIL_SERVE_PUBLIC_PORT":                     "serve.public.port",
	} {
		require.Equal(t, path, names[name].Path, name)
	}
}

func TestEveryLeafSettableFromEnv(t *testing.T) {
	t.Parallel()
	// A value of the right kind for every leaf type; a new type of option
	// without env support fails here.
	for _, l := range Leaves() {
		v := reflect.New(l.Type).Elem()
		var raw string
		switch {
		case l.Type == durationType:
			raw = "1s"
		case l.Type.Kind() == reflect.String:
			raw = "x"
		case l.Type.Kind() == reflect.Bool:
			raw = "true"
		case l.Type.Kind() == reflect.Int:
			raw = "1"
		case l.Type.Kind() == reflect.Float64:
			raw = "0.25"
		case l.Type.Kind() == reflect.Slice:
			raw = "a,b"
		case l.Type.Kind() == reflect.Map:
			raw = "a=b"
		}
		require.NoError(t, setFromString(v, raw), l.Path)
	}
}

func TestUnknownEnv(t *testing.T) {
	t.Parallel()
	l, err := LoadConfig(LoadOptions{
		LookupEnv: envOf(essentials()),
		Environ:   []string{"VIGIL_DSN=x", "VIGIL_SERVE_PUBLC_PORT=1", "VIGIL_TEST_DATABASE_URL=postgres://", "HOME=/root"},
	})
	require.NoError(t, err)
	require.Equal(t, []string{"VIGIL_SERVE_PUBLC_PORT"}, l.UnknownEnv)
}

func TestValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	file := writeFile(t, `
dsn: mysql://root@localhost/vigil
serve:
  public: {port: 70000, base_url: "ftp://x"}
  admin: {port: 0}
  shutdown_timeout: 0s
secrets:
  system: [short, `+testSecret+`, `+testSecret+`]
admin: {api_key: short}
verification:
  enable_email_verification: false
  verification_code_expiration: 0
  max_verification_retries: 0
  require: phone
  code_length: 12
  link_lifespan: -1h
  resend: {cooldown: -1s, per_destination_10m: 0}
  lockout: {base: 10m, max: 1m, hard_lock_after: 0}
  check_per_ip_minute: 0
delivery:
  email: {provider: smtp, smtp: {url: "smtp://mail"}}
  sms: {provider: carrier-pigeon}
log: {level: loud, format: xml}
database: {max_conns: 0}
`)
	c, err := load(t, file, nil)
	require.NoError(t, err)
	got := problemsOf(t, c.Validate())
	want := []string{
		`dsn: unsupported scheme "mysql"; use sqlite:// or postgres://`,
		`serve.public.port: must be between 1 and 65535, got 70000`,
		`serve.admin.port: must be between 1 and 65535, got 0`,
		`serve.public.base_url: must be an absolute http:// or https:// URL, got "ftp://x"`,
		`serve.shutdown_timeout: must be positive, got 0s`,
		`secrets.system[0]: must be at least 32 bytes, got 5`,
		`secrets.system[2]: repeats an earlier secret`,
		`admin.api_key: must be at least 16 characters, got 5`,
		`hooks.api_key: required; set VIGIL_HOOKS_API_KEY (or run with --dev to generate one)`,
		`verification: enable_email_verification and enable_sms_verification are both false; enable at least one`,
		`verification.verification_code_expiration: must be between 1 and 1440 minutes, got 0`,
		`verification.max_verification_retries: must be between 1 and 100, got 0`,
		`verification.require: is phone but verification.enable_sms_verification is false`,
		`verification.code_length: must be between 4 and 10, got 12`,
		`verification.link_lifespan: must be a positive duration, got -1h0m0s`,
		`verification.resend.cooldown: must not be negative, got -1s`,
		`verification.resend.per_destination_10m: must be between 1 and 1000, got 0`,
		`verification.lockout.max: must be at least verification.lockout.base (10m0s), got 1m0s`,
		`verification.lockout.hard_lock_after: must be between 1 and 1000000, got 0`,
		`verification.check_per_ip_minute: must be between 1 and 100000, got 0`,
		`delivery.email.smtp.from: required when the email providers include smtp`,
		`delivery.sms.provider: must be one of console, http, twilio, twilio_whatsapp, twilio_verify, engagelab, got "carrier-pigeon"`,
		`log.level: must be one of debug, info, warn, error, got "loud"`,
		`log.format: must be json or text, got "xml"`,
		`database.max_conns: must be between 1 and 1000, got 0`,
	}
	require.Equal(t, want, got)
	require.Contains(t, c.Validate().Error(), "invalid configuration (25 problems):\n  - dsn: ")
}

func TestValidateSingleProblems(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"code length too short", map[string]string{"VIGIL_VERIFICATION_CODE_LENGTH": "3"}, "verification.code_length: must be between 4 and 10, got 3"},
		{"code length too long", map[string]string{"VIGIL_VERIFICATION_CODE_LENGTH": "12"}, "verification.code_length: must be between 4 and 10, got 12"},
		{"require unknown", map[string]string{"VIGIL_VERIFICATION_REQUIRE": "most"}, `verification.require: must be one of any, email, phone, all, got "most"`},
		{"require all without sms", map[string]string{"VIGIL_VERIFICATION_REQUIRE": "all"}, "verification.require: is all but verification.enable_sms_verification is false"},
		{"dsn without scheme", map[string]string{"VIGIL_DSN": "vigil.db"}, `dsn: must be a URL (sqlite://FILE or postgres://USER@HOST/DB), got "vigil.db"`},
		{"dsn empty", map[string]string{"VIGIL_DSN": ""}, "dsn: required; set VIGIL_DSN (sqlite://FILE or postgres://USER@HOST/DB)"},
		{"same listener twice", map[string]string{"VIGIL_SERVE_ADMIN_PORT": "4480"}, "serve.admin.port: must differ from serve.public.port (both 127.0.0.1:4480)"},
		{"sms http without url", map[string]string{"VIGIL_DELIVERY_SMS_PROVIDER": "http"}, "delivery.sms.http.url: required when the sms providers include http"},
		{"sms http with a bad header", map[string]string{"VIGIL_DELIVERY_SMS_PROVIDER": "http", "VIGIL_DELIVERY_SMS_HTTP_URL": "https://sms.example.com", "VIGIL_DELIVERY_SMS_HTTP_HEADERS": "Idempotency-Key=x"}, "delivery.sms.http.headers: header Idempotency-Key is set by the sender"},
		{"smtp with a bad scheme", map[string]string{"VIGIL_DELIVERY_EMAIL_PROVIDER": "smtp", "VIGIL_DELIVERY_EMAIL_SMTP_URL": "http://mail", "VIGIL_DELIVERY_EMAIL_SMTP_FROM": "a@example.com"}, `delivery.email.smtp.url: URL scheme "http": want smtp or smtps`},
		{"smtp with a bad sender", map[string]string{"VIGIL_DELIVERY_EMAIL_PROVIDER": "smtp", "VIGIL_DELIVERY_EMAIL_SMTP_URL": "smtp://mail", "VIGIL_DELIVERY_EMAIL_SMTP_FROM": "nobody"}, `delivery.email.smtp.from: From "nobody": mail: missing '@' or angle-addr`},
		{"queue rescue too soon", map[string]string{"VIGIL_DELIVERY_QUEUE_RESCUE_AFTER": "10s"}, "delivery.queue.rescue_after: must be between 35s and 1h, got 10s"},
		{"queue workers negative", map[string]string{"VIGIL_DELIVERY_QUEUE_WORKERS": "-1"}, "delivery.queue.workers: must be between 0 and 1000 (0 is the store's default), got -1"},
		{"twilio without account", map[string]string{"VIGIL_VERIFICATION_ENABLE_SMS_VERIFICATION": "true", "VIGIL_DELIVERY_SMS_PROVIDERS": "twilio,http", "VIGIL_DELIVERY_SMS_HTTP_URL": "https://sms.example.com", "VIGIL_DELIVERY_SMS_TWILIO_AUTH_TOKEN": "x", "VIGIL_DELIVERY_SMS_TWILIO_FROM": "+15005550006"}, "delivery.sms.twilio: AccountSID must be AC followed by 32 hexadecimal digits"},
		{"twilio callbacks need the auth token", map[string]string{"VIGIL_DELIVERY_SMS_PROVIDER": "twilio", "VIGIL_DELIVERY_SMS_TWILIO_ACCOUNT_SID": "AC" + strings.Repeat("0", 32), "VIGIL_DELIVERY_SMS_TWILIO_API_KEY_SID": "SK" + strings.Repeat("0", 32), "VIGIL_DELIVERY_SMS_TWILIO_API_KEY_SECRET": "s", "VIGIL_DELIVERY_SMS_TWILIO_FROM": "+15005550006", "VIGIL_DELIVERY_SMS_TWILIO_STATUS_CALLBACKS": "true"}, "delivery.sms.twilio.auth_token: required with status_callbacks: Twilio signs its callbacks with it"},
		{"a provider twice in a chain", map[string]string{"VIGIL_DELIVERY_EMAIL_PROVIDERS": "console,console"}, "delivery.email.providers[1]: console is already in the chain"},
		{"unknown number type", map[string]string{"VIGIL_DELIVERY_SMS_PROTECTION_ALLOWED_NUMBER_TYPES": "mobile,satellite"}, `delivery.sms.protection.allowed_number_types[1]: unknown number type "satellite" (mobile, fixed_line_or_mobile, fixed_line, toll_free, premium_rate, shared_cost, voip, personal_number, pager, uan, voicemail, unknown)`},
		{"country in lower case", map[string]string{"VIGIL_DELIVERY_SMS_PROTECTION_ALLOWED_COUNTRIES": "de"}, `delivery.sms.protection.allowed_countries[0]: must be an upper-case ISO 3166-1 alpha-2 code such as DE, got "de"`},
		{"conversion threshold above one", map[string]string{"VIGIL_DELIVERY_SMS_PROTECTION_CONVERSION_THRESHOLD": "1.5"}, "delivery.sms.protection.conversion.threshold: must be between 0 (off) and 1, got 1.5"},
		{"captcha without secret", map[string]string{"VIGIL_CAPTCHA_PROVIDER": "turnstile"}, "captcha.secret: required with captcha.provider; set VIGIL_CAPTCHA_SECRET"},
		{"captcha provider unknown", map[string]string{"VIGIL_CAPTCHA_PROVIDER": "recaptcha", "VIGIL_CAPTCHA_SECRET": "s"}, `captcha: Provider "recaptcha": want turnstile or hcaptcha`},
		{"smtp password stays out of errors", map[string]string{"VIGIL_DELIVERY_EMAIL_PROVIDER": "smtp", "VIGIL_DELIVERY_EMAIL_SMTP_URL": "smtp://u:hunter2@mail/path", "VIGIL_DELIVERY_EMAIL_SMTP_FROM": "a@example.com"}, "delivery.email.smtp.url: URL must have no path or fragment"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := essentials()
			maps.Copy(env, tt.env)
			c, err := load(t, "", env)
			require.NoError(t, err)
			require.Equal(t, []string{tt.want}, problemsOf(t, c.Validate()))
			require.Equal(t, "invalid configuration: "+tt.want, c.Validate().Error())
		})
	}
}

func TestMissingEssentialsNameTheirVariables(t *testing.T) {
	t.Parallel()
	c, err := load(t, "", nil)
	require.NoError(t, err)
	msg := c.Validate().Error()
	for _, name := range []string{"VIGIL_SECRETS_SYSTEM", "VIGIL_ADMIN_API_KEY", "VIGIL_HOOKS_API_KEY"} {
		require.Contains(t, msg, name)
	}
	require.Len(t, problemsOf(t, c.Validate()), 3)
}

func TestDevGeneratesMissingSecrets(t *testing.T) {
	t.Parallel()
	t.Run("nothing configured", func(t *testing.T) {
		t.Parallel()
		l, err := LoadConfig(LoadOptions{Dev: true})
		require.NoError(t, err)
		c := &l.Config
		seq := make([]byte, 96)
		for i := range seq {
			seq[i] = byte(i)
		}
		gen, err := c.ApplyDev(bytes.NewReader(seq))
		require.NoError(t, err)
		require.NoError(t, c.Validate())
		require.Len(t, gen, 3)
		require.Equal(t, "VIGIL_SECRETS_SYSTEM", gen[0].Env)
		require.Equal(t, "VIGIL_ADMIN_API_KEY", gen[1].Env)
		require.Equal(t, "VIGIL_HOOKS_API_KEY", gen[2].Env)
		require.Equal(t, []string{gen[0].Value}, c.Secrets.System)
		require.Len(t, gen[0].Value, 64)
		require.Equal(t, gen[1].Value, c.Admin.APIKey)
		require.Equal(t, gen[2].Value, c.Hooks.APIKey)
		require.Equal(t, "sqlite://vigil.db", c.DSN)
		require.Equal(t, "text", c.Log.Format, "dev logs read as text")

		f := c.Flows()
		require.True(t, f.Dev)
		require.True(t, f.ShowCodes)

		var out bytes.Buffer
		WriteGenerated(&out, gen)
		printed := out.String()
		for _, g := range gen {
			require.Equal(t, 1, strings.Count(printed, g.Value), "each secret printed once")
			require.Contains(t, printed, "export "+g.Env+"="+g.Value)
		}
	})
	t.Run("configured secrets are kept", func(t *testing.T) {
		t.Parallel()
		l, err := LoadConfig(LoadOptions{Dev: true, LookupEnv: envOf(map[string]string{"VIGIL_ADMIN_API_KEY": testKey})})
		require.NoError(t, err)
		gen, err := l.Config.ApplyDev(bytes.NewReader(bytes.Repeat([]byte{1}, 64)))
		require.NoError(t, err)
		require.Len(t, gen, 2)
		require.Equal(t, testKey, l.Config.Admin.APIKey)
	})
	t.Run("everything configured prints nothing", func(t *testing.T) {
		t.Parallel()
		l, err := LoadConfig(LoadOptions{Dev: true, LookupEnv: envOf(essentials())})
		require.NoError(t, err)
		gen, err := l.Config.ApplyDev(bytes.NewReader(nil))
		require.NoError(t, err)
		require.Empty(t, gen)
		var out bytes.Buffer
		WriteGenerated(&out, gen)
		require.Empty(t, out.String())
	})
	t.Run("random source failing is an error", func(t *testing.T) {
		t.Parallel()
		l, err := LoadConfig(LoadOptions{Dev: true})
		require.NoError(t, err)
		_, err = l.Config.ApplyDev(bytes.NewReader([]byte{1, 2, 3}))
		require.Error(t, err)
	})
}

func TestRedactDSN(t *testing.T) {
	t.Parallel()
	require.Equal(t, "postgres://u:xxxxx@h/db", redactDSN("postgres://u:secret@h/db"))
	require.Equal(t, "sqlite://vigil.db", redactDSN("sqlite://vigil.db"))
}

// docs/configuration.md documents every option with its environment name.
func TestDocsListEveryOption(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "configuration.md"))
	require.NoError(t, err)
	for _, l := range Leaves() {
		require.Contains(t, string(doc), "`"+l.Path+"`", "docs/configuration.md misses option %s", l.Path)
		require.Contains(t, string(doc), "`"+EnvName(l.Path)+"`", "docs/configuration.md misses env name of %s", l.Path)
	}
}

// vigil.example.yml sets every option and is valid as it stands (with the
// essentials it leaves to the environment).
func TestExampleFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join("..", "..", "vigil.example.yml")
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	c, err := load(t, path, essentials())
	require.NoError(t, err)
	require.NoError(t, c.Validate())

	// Every leaf path appears as a key: walk the example's keys.
	var ps problems
	var probe Config
	decodeYAML(data, &probe, &ps)
	require.Empty(t, ps)
	for _, l := range Leaves() {
		parts := strings.Split(l.Path, ".")
		require.Contains(t, string(data), parts[len(parts)-1]+":", "vigil.example.yml misses %s", l.Path)
	}
}

func TestMergeProblems(t *testing.T) {
	t.Parallel()
	l, loadErr := LoadConfig(LoadOptions{LookupEnv: envOf(map[string]string{
		"VIGIL_SERVE_ADMIN_PORT":         "4480x",
		"VIGIL_VERIFICATION_CODE_LENGTH": "2",
	})})
	require.NotNil(t, l, "the configuration comes back with its problems")
	require.Error(t, loadErr)
	// The admin port kept its default, so Validate has nothing to say
	// about it; the missing essentials and code length are added.
	got := problemsOf(t, MergeProblems(loadErr, l.Config.Validate()))
	require.Equal(t, []string{
		`serve.admin.port: environment variable VIGIL_SERVE_ADMIN_PORT: "4480x" is not an integer`,
		"secrets.system: required; set VIGIL_SECRETS_SYSTEM to one or more comma-separated random strings of at least 32 bytes, newest first (or run with --dev to generate one)",
		"admin.api_key: required; set VIGIL_ADMIN_API_KEY (or run with --dev to generate one)",
		"hooks.api_key: required; set VIGIL_HOOKS_API_KEY (or run with --dev to generate one)",
		"verification.code_length: must be between 4 and 10, got 2",
	}, got)

	// A problem Validate finds at a path that failed to load is not
	// repeated.
	loadOnly := &ConfigError{Problems: []Problem{{Path: "serve.admin.port", Message: "unreadable"}}}
	validateOnly := &ConfigError{Problems: []Problem{{Path: "serve.admin.port", Message: "must differ"}, {Path: "log.level", Message: "bad"}}}
	require.Equal(t, []string{"serve.admin.port: unreadable", "log.level: bad"}, problemsOf(t, MergeProblems(loadOnly, validateOnly)))
	require.NoError(t, MergeProblems(nil, nil))
}

// The file decoder takes whatever an operator writes; it reports problems
// and never panics.
func FuzzDecodeYAML(f *testing.F) {
	for _, seed := range []string{
		"", "dsn: sqlite://x.db\n", "serve: 1\n", "serve:\n  public: {port: [1]}\n",
		"verification: {resend: {cooldown: 1h}}\n", "a: &x {b: *x}\n", "secrets: {system: [a, {b: c}]}\n",
		"delivery: {sms: {http: {headers: {A: [1]}}}}\n", "- 1\n- 2\n", "? [a]\n: b\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data string) {
		c := DefaultConfig()
		var ps problems
		decodeYAML([]byte(data), &c, &ps)
		for _, p := range ps {
			if p.Path == "" || p.Message == "" {
				t.Fatalf("problem without path or message: %+v", p)
			}
		}
		_ = c.Validate()
	})
}

func FuzzEnvValue(f *testing.F) {
	for _, seed := range []string{"", "1", "true", "30s", "a,b", "A=1,B=2", "=", ",,", "-1h"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		c := DefaultConfig()
		root := reflect.ValueOf(&c).Elem()
		for _, l := range Leaves() {
			_ = setFromString(root.FieldByIndex(l.Index), raw)
		}
	})
}
