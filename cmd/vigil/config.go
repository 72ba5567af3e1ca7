package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/vigil-auth/vigil"
	"github.com/vigil-auth/vigil/adapters/webauthn"
	"github.com/vigil-auth/vigil/flows"
	"github.com/vigil-auth/vigil/flows/templates"
)

// Config is vigil.yml. Every leaf option can also be set through the
// environment as VIGIL_ + its path upper-cased with dots turned into
// underscores (serve.public.port is VIGIL_SERVE_PUBLIC_PORT); see envNames.
type Config struct {
	DSN          string             `yaml:"dsn"`
	Serve        ServeConfig        `yaml:"serve"`
	Secrets      SecretsConfig      `yaml:"secrets"`
	Admin        KeyConfig          `yaml:"admin"`
	Hooks        KeyConfig          `yaml:"hooks"`
	Kratos       KratosConfig       `yaml:"kratos"`
	Verification VerificationConfig `yaml:"verification"`
	Delivery     DeliveryConfig     `yaml:"delivery"`
	Templates    TemplatesConfig    `yaml:"templates"`
	Captcha      CaptchaConfig      `yaml:"captcha"`
	Devices      DevicesConfig      `yaml:"devices"`
	Log          LogConfig          `yaml:"log"`
	Database     DatabaseConfig     `yaml:"database"`

	// Dev is --dev: it is a flag, never read from the file or environment.
	Dev bool `yaml:"-"`
}

type ServeConfig struct {
	Public            PublicListenerConfig `yaml:"public"`
	Admin             ListenerConfig       `yaml:"admin"`
	TrustProxyHeaders bool                 `yaml:"trust_proxy_headers"`
	ShutdownTimeout   time.Duration        `yaml:"shutdown_timeout"`
}

type ListenerConfig struct {
	Host string `yaml:"host"`
	Port int    `yaml:"port"`
}

type PublicListenerConfig struct {
	Host string `yaml:"host"`
	Port int    `yaml:"port"`
	// BaseURL is how browsers reach the public listener (links in emails).
	// Empty means http://host:port.
	BaseURL string `yaml:"base_url"`
}

type SecretsConfig struct {
	// System secrets, newest first. New data uses the first; the others
	// still open what they sealed, so rotation is a prepend.
	System []string `yaml:"system"`
}

type KeyConfig struct {
	APIKey string `yaml:"api_key"`
}

type VerificationConfig struct {
	EnableEmailVerification     bool          `yaml:"enable_email_verification"`
	EnableSMSVerification       bool          `yaml:"enable_sms_verification"`
	VerificationRequiredOnLogin bool          `yaml:"verification_required_on_login"`
	VerificationCodeExpiration  int           `yaml:"verification_code_expiration"` // minutes
	SMSCodeExpirationCap        int           `yaml:"sms_code_expiration_cap"`      // minutes
	MaxVerificationRetries      int           `yaml:"max_verification_retries"`
	Require                     string        `yaml:"require"`
	CodeLength                  int           `yaml:"code_length"`
	LinkLifespan                time.Duration `yaml:"link_lifespan"`
	Resend                      ResendConfig  `yaml:"resend"`
	Lockout                     LockoutConfig `yaml:"lockout"`
	CheckPerIPMinute            int           `yaml:"check_per_ip_minute"`
	NoAddress                   string        `yaml:"no_address"` // allow | block
	Soft                        bool          `yaml:"soft"`
}

type ResendConfig struct {
	Cooldown           time.Duration `yaml:"cooldown"`
	PerDestination10m  int           `yaml:"per_destination_10m"`
	PerDestinationHour int           `yaml:"per_destination_hour"`
	PerIdentityHour    int           `yaml:"per_identity_hour"`
	PerIPHour          int           `yaml:"per_ip_hour"`
}

type LockoutConfig struct {
	Base          time.Duration `yaml:"base"`
	Max           time.Duration `yaml:"max"`
	HardLockAfter int           `yaml:"hard_lock_after"`
}

type DeliveryConfig struct {
	Email EmailDeliveryConfig `yaml:"email"`
	SMS   SMSDeliveryConfig   `yaml:"sms"`
	Queue QueueConfig         `yaml:"queue"`
}

// QueueConfig tunes the durable delivery queue of this process.
type QueueConfig struct {
	// Workers is how many deliveries run at once; 0 is the store's
	// default (64 on PostgreSQL, 16 on SQLite).
	Workers int `yaml:"workers"`
	// RescueAfter is how long a delivery claimed by a process that died
	// waits before another process (or the restarted one) takes it over.
	RescueAfter time.Duration `yaml:"rescue_after"`
}

type EmailDeliveryConfig struct {
	// Provider is one provider; Providers, when set, a chain of them
	// tried in order (a transient failure passes the message on).
	Provider  string     `yaml:"provider"` // console | smtp
	Providers []string   `yaml:"providers"`
	SMTP      SMTPConfig `yaml:"smtp"`
}

type SMTPConfig struct {
	URL  string `yaml:"url"`
	From string `yaml:"from"`
}

type SMSDeliveryConfig struct {
	// Provider is one provider; Providers, when set, a chain of them.
	Provider   string              `yaml:"provider"` // console | http | twilio | twilio_whatsapp | twilio_verify | engagelab
	Providers  []string            `yaml:"providers"`
	HTTP       HTTPSMSConfig       `yaml:"http"`
	Twilio     TwilioConfig        `yaml:"twilio"`
	EngageLab  EngageLabConfig     `yaml:"engagelab"`
	Protection SMSProtectionConfig `yaml:"protection"`
}

type HTTPSMSConfig struct {
	URL         string            `yaml:"url"`
	Headers     map[string]string `yaml:"headers"`
	BearerToken string            `yaml:"bearer_token"`
}

// TwilioConfig serves the twilio (Programmable Messaging SMS),
// twilio_whatsapp and twilio_verify providers.
type TwilioConfig struct {
	AccountSID   string `yaml:"account_sid"`
	AuthToken    string `yaml:"auth_token"`
	APIKeySID    string `yaml:"api_key_sid"`
	APIKeySecret string `yaml:"api_key_secret"`
	// From or MessagingServiceSID send SMS; WhatsAppFrom sends WhatsApp.
	From                string `yaml:"from"`
	MessagingServiceSID string `yaml:"messaging_service_sid"`
	WhatsAppFrom        string `yaml:"whatsapp_from"`
	// VerifyServiceSID is the Twilio Verify service of twilio_verify.
	VerifyServiceSID string `yaml:"verify_service_sid"`
	// StatusCallbacks asks Twilio for delivery reports at
	// serve.public.base_url + /callbacks/twilio/status; it needs
	// auth_token, which signs them.
	StatusCallbacks bool   `yaml:"status_callbacks"`
	BaseURL         string `yaml:"base_url"`
	VerifyBaseURL   string `yaml:"verify_base_url"`
}

type EngageLabConfig struct {
	DevKey     string `yaml:"dev_key"`
	DevSecret  string `yaml:"dev_secret"`
	TemplateID string `yaml:"template_id"`
	Language   string `yaml:"language"`
	BaseURL    string `yaml:"base_url"`
}

// SMSProtectionConfig is flows.SMSProtection in vigil.yml.
type SMSProtectionConfig struct {
	AllowedCountries   []string         `yaml:"allowed_countries"`
	AllowedNumberTypes []string         `yaml:"allowed_number_types"`
	PrefixDigits       int              `yaml:"prefix_digits"`
	PrefixPerHour      int              `yaml:"prefix_per_hour"`
	GlobalPerHour      int              `yaml:"global_per_hour"`
	Conversion         ConversionConfig `yaml:"conversion"`
}

type ConversionConfig struct {
	Window    time.Duration `yaml:"window"`
	MinSent   int           `yaml:"min_sent"`
	Threshold float64       `yaml:"threshold"`
	Throttle  bool          `yaml:"throttle"`
}

// TemplatesConfig says where message templates come from.
type TemplatesConfig struct {
	// Dir overrides built-in templates file by file; empty uses the
	// built-in ones.
	Dir             string `yaml:"dir"`
	DefaultLanguage string `yaml:"default_language"`
	// Product is the name messages sign with; empty leaves it out.
	Product string `yaml:"product"`
}

// CaptchaConfig asks callers without a session for a CAPTCHA before a
// resend.
type CaptchaConfig struct {
	Provider string `yaml:"provider"` // "" (off) | turnstile | hcaptcha
	Secret   string `yaml:"secret"`
	SiteKey  string `yaml:"site_key"`
	URL      string `yaml:"url"`
}

// DevicesConfig is trusted devices: step-up on new devices, device
// tokens, and WebAuthn enrollment by admins.
type DevicesConfig struct {
	// StepUpOnNewDevice blocks a login from a device without valid trust
	// until a code sent to a verified address is typed.
	StepUpOnNewDevice bool               `yaml:"step_up_on_new_device"`
	TrustFor          time.Duration      `yaml:"trust_for"`
	IdleFor           time.Duration      `yaml:"idle_for"`
	EnrollmentTTL     time.Duration      `yaml:"enrollment_ttl"`
	Cookie            DeviceCookieConfig `yaml:"cookie"`
	WebAuthn          WebAuthnConfig     `yaml:"webauthn"`
}

// DeviceCookieConfig is the cookie browsers keep their device token in.
type DeviceCookieConfig struct {
	// Name must start with vigil_: the shipped login Jsonnet passes on
	// only those cookies.
	Name string `yaml:"name"`
	// Domain must be one Kratos' pages are also under, so that Kratos
	// forwards the cookie to the login hook; empty: the host that set it.
	Domain   string `yaml:"domain"`
	Secure   bool   `yaml:"secure"`
	SameSite string `yaml:"same_site"` // lax | strict | none
}

// WebAuthnConfig is the relying party devices enroll with. Enrollment is
// off while rp_id is empty.
type WebAuthnConfig struct {
	RPID    string        `yaml:"rp_id"`
	RPName  string        `yaml:"rp_name"`
	Origins []string      `yaml:"origins"`
	Timeout time.Duration `yaml:"timeout"`
}

type LogConfig struct {
	Level  string `yaml:"level"`  // debug | info | warn | error
	Format string `yaml:"format"` // json | text; empty: json, or text with --dev
}

type DatabaseConfig struct {
	MaxConns int `yaml:"max_conns"`
}

// Environment names that stay fixed whatever the struct looks like: they
// are in every deployment's manifests. Each names an option path.
var fixedEnv = map[string]string{
	"VIGIL_DSN":            "dsn",
	"VIGIL_ADMIN_API_KEY":  "admin.api_key",
	"VIGIL_HOOKS_API_KEY":  "hooks.api_key",
	"VIGIL_SECRETS_SYSTEM": "secrets.system",
}

const defaultDSN = "sqlite://vigil.db"

// Values options take in more than one place.
const (
	localhost = "127.0.0.1"

	providerConsole        = "console"
	providerSMTP           = "smtp"
	providerHTTP           = "http"
	providerTwilio         = "twilio"
	providerTwilioWhatsApp = "twilio_whatsapp"
	providerTwilioVerify   = "twilio_verify"
	providerEngageLab      = "engagelab"

	schemeSQLite     = "sqlite"
	schemePostgres   = "postgres"
	schemePostgreSQL = "postgresql"

	formatJSON = "json"
	formatText = "text"

	yamlNull = "!!null"
)

// KratosConfig says where Ory Kratos answers. Without admin_url verified
// addresses are not synced back to Kratos; without public_url session-based
// calls (forward-auth, the user's own status) answer 401.
type KratosConfig struct {
	AdminURL  string        `yaml:"admin_url"`
	PublicURL string        `yaml:"public_url"`
	Timeout   time.Duration `yaml:"timeout"`
}

// DefaultConfig is the configuration before the file and the environment
// are applied. Options neither of them sets keep these values.
func DefaultConfig() Config {
	return Config{
		DSN: defaultDSN,
		Serve: ServeConfig{
			Public:          PublicListenerConfig{Host: localhost, Port: 4480},
			Admin:           ListenerConfig{Host: localhost, Port: 4481},
			ShutdownTimeout: 30 * time.Second,
		},
		Verification: VerificationConfig{
			EnableEmailVerification:     true,
			EnableSMSVerification:       false,
			VerificationRequiredOnLogin: true,
			VerificationCodeExpiration:  15,
			SMSCodeExpirationCap:        10,
			MaxVerificationRetries:      3,
			Require:                     string(flows.RequireAny),
			CodeLength:                  6,
			LinkLifespan:                24 * time.Hour,
			Resend: ResendConfig{
				Cooldown:           60 * time.Second,
				PerDestination10m:  5,
				PerDestinationHour: 10,
				PerIdentityHour:    20,
				PerIPHour:          30,
			},
			Lockout:          LockoutConfig{Base: time.Minute, Max: 15 * time.Minute, HardLockAfter: 100},
			CheckPerIPMinute: 30,
			NoAddress:        flows.NoAddressBlock,
		},
		Kratos: KratosConfig{Timeout: 5 * time.Second},
		Delivery: DeliveryConfig{
			Email: EmailDeliveryConfig{Provider: providerConsole},
			Queue: QueueConfig{RescueAfter: time.Minute},
			SMS: SMSDeliveryConfig{Provider: providerConsole, Protection: SMSProtectionConfig{
				AllowedNumberTypes: []string{flows.PhoneTypeMobile, flows.PhoneTypeFixedOrMobile},
				PrefixDigits:       6,
				PrefixPerHour:      60,
				Conversion:         ConversionConfig{Window: time.Hour, MinSent: 20, Threshold: 0.2, Throttle: true},
			}},
		},
		Templates: TemplatesConfig{DefaultLanguage: templates.DefaultLanguage},
		Devices: DevicesConfig{
			TrustFor: 30 * 24 * time.Hour, IdleFor: 7 * 24 * time.Hour, EnrollmentTTL: 15 * time.Minute,
			Cookie:   DeviceCookieConfig{Name: "vigil_device", Secure: true, SameSite: "lax"},
			WebAuthn: WebAuthnConfig{RPName: "Vigil", Timeout: 5 * time.Minute},
		},
		Log:      LogConfig{Level: "info"},
		Database: DatabaseConfig{MaxConns: 10},
	}
}

// LoadOptions says where configuration comes from. The loader never reads
// the process environment itself, so tests hand it whatever they like.
type LoadOptions struct {
	// File is the path of vigil.yml. When FileRequired is false a missing
	// file is fine (the default ./vigil.yml is optional; --config is not).
	File         string
	FileRequired bool
	// LookupEnv reads one environment variable; nil reads none.
	LookupEnv func(string) (string, bool)
	// Environ lists the environment as KEY=VALUE, only to warn about
	// VIGIL_* names that mean nothing.
	Environ []string
	Dev     bool
}

// Loaded is a configuration with what the loader noticed on the way.
type Loaded struct {
	Config Config
	// File is the file that was read, empty when none.
	File string
	// UnknownEnv are VIGIL_* variables that match no option.
	UnknownEnv []string
}

// Problem is one thing wrong with the configuration, at one option path.
type Problem struct {
	Path    string
	Message string
}

func (p Problem) String() string { return p.Path + ": " + p.Message }

// ConfigError lists every problem found at once, so an operator fixes them
// in one round.
type ConfigError struct {
	Problems []Problem
}

func (e *ConfigError) Error() string {
	if len(e.Problems) == 1 {
		return "invalid configuration: " + e.Problems[0].String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "invalid configuration (%d problems):", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  - ")
		b.WriteString(p.String())
	}
	return b.String()
}

type problems []Problem

func (ps *problems) addf(path, format string, args ...any) {
	*ps = append(*ps, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

func (ps *problems) err() error {
	if len(*ps) == 0 {
		return nil
	}
	return &ConfigError{Problems: *ps}
}

// LoadConfig reads the file, then the VIGIL_* environment over it, then
// fills what is still unset with defaults. It does not validate: call
// Validate after applying --dev. Values it cannot read (an unknown key, a
// wrong type) come back as a *ConfigError together with the rest of the
// configuration; other errors (an unreadable file) with nil.
func LoadConfig(o LoadOptions) (*Loaded, error) {
	l := &Loaded{Config: DefaultConfig()}
	l.Config.Dev = o.Dev
	var ps problems

	if o.File != "" {
		data, err := os.ReadFile(o.File)
		switch {
		case err == nil:
			l.File = o.File
			decodeYAML(data, &l.Config, &ps)
		case errors.Is(err, os.ErrNotExist) && !o.FileRequired:
		default:
			return nil, fmt.Errorf("read config file: %w", err)
		}
	}
	if o.LookupEnv != nil {
		applyEnv(o.LookupEnv, &l.Config, &ps)
	}
	l.UnknownEnv = unknownEnv(o.Environ)
	l.Config.applyDefaults()
	if err := ps.err(); err != nil {
		// The configuration as far as it could be read comes back too, so
		// the caller can add what Validate finds and report all at once.
		return l, err
	}
	return l, nil
}

// MergeProblems joins the problems of loading and of validating into one
// *ConfigError (nil when there are none). A validation problem at a path
// that already failed to load is left out: it only repeats the default
// that stood in for the unreadable value.
func MergeProblems(loadErr, validateErr error) error {
	var out problems
	failed := map[string]bool{}
	if ce, ok := errors.AsType[*ConfigError](loadErr); ok {
		for _, p := range ce.Problems {
			out = append(out, p)
			failed[p.Path] = true
		}
	} else if loadErr != nil {
		return loadErr
	}
	if ce, ok := errors.AsType[*ConfigError](validateErr); ok {
		for _, p := range ce.Problems {
			if !failed[p.Path] {
				out = append(out, p)
			}
		}
	} else if validateErr != nil {
		return validateErr
	}
	return out.err()
}

// applyDefaults fills the options whose default depends on others.
func (c *Config) applyDefaults() {
	if c.Serve.Public.BaseURL == "" {
		host := c.Serve.Public.Host
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = localhost
		}
		c.Serve.Public.BaseURL = "http://" + joinHostPort(host, c.Serve.Public.Port)
	}
	c.Serve.Public.BaseURL = strings.TrimRight(c.Serve.Public.BaseURL, "/")
	if c.Log.Format == "" {
		c.Log.Format = formatJSON
		if c.Dev {
			c.Log.Format = formatText
		}
	}
}

func joinHostPort(host string, port int) string {
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return host + ":" + strconv.Itoa(port)
}

// decodeYAML decodes data onto c leaf by leaf, so that every error (an
// unknown key, a wrong type) names the full option path.
func decodeYAML(data []byte, c *Config, ps *problems) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return // empty file
		}
		ps.addf("(file)", "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		return
	}
	if len(doc.Content) == 0 {
		return
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == yamlNull {
		return
	}
	decodeNode("", root, reflect.ValueOf(c).Elem(), ps)
}

func decodeNode(path string, n *yaml.Node, v reflect.Value, ps *problems) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if v.Kind() != reflect.Struct {
		if n.Kind == yaml.ScalarNode && n.Tag == yamlNull {
			return // "key:" with no value keeps the default
		}
		if err := n.Decode(v.Addr().Interface()); err != nil {
			ps.addf(path, "%s", yamlErrorMessage(err, n))
		}
		return
	}
	where := path
	if where == "" {
		where = "(file)"
	}
	if n.Kind == yaml.ScalarNode && n.Tag == yamlNull {
		return
	}
	if n.Kind != yaml.MappingNode {
		ps.addf(where, "must be a mapping of options (line %d)", n.Line)
		return
	}
	fields := yamlFields(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.AliasNode && k.Alias != nil {
			k = k.Alias
		}
		if k.Kind != yaml.ScalarNode {
			ps.addf(where, "option names must be plain words (line %d)", k.Line)
			continue
		}
		name := k.Value
		if name == "" {
			name = `""`
		}
		p := joinPath(path, name)
		idx, ok := fields[k.Value]
		if !ok {
			ps.addf(p, "unknown option (line %d)", k.Line)
			continue
		}
		if seen[k.Value] {
			ps.addf(p, "set twice (line %d)", k.Line)
			continue
		}
		seen[k.Value] = true
		decodeNode(p, val, v.Field(idx), ps)
	}
}

func yamlErrorMessage(err error, n *yaml.Node) string {
	msg := err.Error()
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = strings.Join(te.Errors, "; ")
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	if !strings.HasPrefix(msg, "line ") {
		msg = fmt.Sprintf("%s (line %d)", msg, n.Line)
	}
	return msg
}

func joinPath(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// yamlFields maps a struct's yaml names to field indexes.
func yamlFields(t reflect.Type) map[string]int {
	out := map[string]int{}
	for i := range t.NumField() {
		if name := yamlName(t.Field(i)); name != "" {
			out[name] = i
		}
	}
	return out
}

func yamlName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" || name == "" {
		return ""
	}
	return name
}

// leaf is one settable option: its yaml path and where it lives in Config.
type leaf struct {
	Path  string
	Index []int
	Type  reflect.Type
}

// Leaves lists every option of Config, in struct order. The environment
// mapping, the docs test and the example file test all walk this list, so
// none of them can drift from the struct.
func Leaves() []leaf {
	var out []leaf
	var walk func(prefix string, t reflect.Type, index []int)
	walk = func(prefix string, t reflect.Type, index []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			name := yamlName(f)
			if name == "" {
				continue
			}
			idx := append(append([]int(nil), index...), i)
			p := joinPath(prefix, name)
			if f.Type.Kind() == reflect.Struct {
				walk(p, f.Type, idx)
				continue
			}
			out = append(out, leaf{Path: p, Index: idx, Type: f.Type})
		}
	}
	walk("", reflect.TypeFor[Config](), nil)
	return out
}

// EnvName is the environment variable of an option path.
func EnvName(path string) string {
	return "VIGIL_" + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

// envNames maps every environment variable to the option it sets: the
// derived name of every leaf plus the fixed essentials.
func envNames() map[string]leaf {
	out := map[string]leaf{}
	byPath := map[string]leaf{}
	for _, l := range Leaves() {
		out[EnvName(l.Path)] = l
		byPath[l.Path] = l
	}
	for name, path := range fixedEnv {
		l, ok := byPath[path]
		if !ok {
			panic("config: fixed environment variable " + name + " names unknown option " + path)
		}
		out[name] = l
	}
	return out
}

func applyEnv(lookup func(string) (string, bool), c *Config, ps *problems) {
	names := envNames()
	keys := make([]string, 0, len(names))
	for k := range names {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	root := reflect.ValueOf(c).Elem()
	for _, name := range keys {
		raw, ok := lookup(name)
		if !ok {
			continue
		}
		l := names[name]
		if err := setFromString(root.FieldByIndex(l.Index), raw); err != nil {
			ps.addf(l.Path, "environment variable %s: %v", name, err)
		}
	}
}

var durationType = reflect.TypeFor[time.Duration]()

func setFromString(v reflect.Value, raw string) error {
	s := strings.TrimSpace(raw)
	switch {
	case v.Type() == durationType:
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration (use e.g. 30s, 15m, 24h)", raw)
		}
		v.SetInt(int64(d))
	case v.Kind() == reflect.String:
		v.SetString(s)
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not a boolean (use true or false)", raw)
		}
		v.SetBool(b)
	case v.Kind() == reflect.Int:
		n, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("%q is not an integer", raw)
		}
		v.SetInt(int64(n))
	case v.Kind() == reflect.Float64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", raw)
		}
		v.SetFloat(f)
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String:
		var list []string
		for item := range strings.SplitSeq(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				list = append(list, item)
			}
		}
		v.Set(reflect.ValueOf(list))
	case v.Kind() == reflect.Map && v.Type().Key().Kind() == reflect.String && v.Type().Elem().Kind() == reflect.String:
		m := map[string]string{}
		for item := range strings.SplitSeq(s, ",") {
			if strings.TrimSpace(item) == "" {
				continue
			}
			k, val, ok := strings.Cut(item, "=")
			if !ok || strings.TrimSpace(k) == "" {
				return fmt.Errorf("%q is not a list of Name=value pairs separated by commas", raw)
			}
			m[strings.TrimSpace(k)] = strings.TrimSpace(val)
		}
		v.Set(reflect.ValueOf(m))
	default:
		return fmt.Errorf("option type %s cannot be set from the environment", v.Type())
	}
	return nil
}

func unknownEnv(environ []string) []string {
	names := envNames()
	var out []string
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		// VIGIL_TEST_* configure the test suites, not the service.
		if !strings.HasPrefix(k, "VIGIL_") || strings.HasPrefix(k, "VIGIL_TEST_") {
			continue
		}
		if _, ok := names[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// Validate reports every problem at once, each with its option path.
func (c *Config) Validate() error {
	var ps problems

	switch scheme := dsnScheme(c.DSN); {
	case c.DSN == "":
		ps.addf("dsn", "required; set VIGIL_DSN (sqlite://FILE or postgres://USER@HOST/DB)")
	case scheme == "":
		ps.addf("dsn", "must be a URL (sqlite://FILE or postgres://USER@HOST/DB), got %q", redactDSN(c.DSN))
	case scheme != schemeSQLite && scheme != schemePostgres && scheme != schemePostgreSQL:
		ps.addf("dsn", "unsupported scheme %q; use sqlite:// or postgres://", scheme)
	}

	checkPort(&ps, "serve.public.port", c.Serve.Public.Port)
	checkPort(&ps, "serve.admin.port", c.Serve.Admin.Port)
	if c.Serve.Public.Port == c.Serve.Admin.Port && c.Serve.Public.Host == c.Serve.Admin.Host {
		ps.addf("serve.admin.port", "must differ from serve.public.port (both %s)", joinHostPort(c.Serve.Admin.Host, c.Serve.Admin.Port))
	}
	if !isHTTPURL(c.Serve.Public.BaseURL) {
		ps.addf("serve.public.base_url", "must be an absolute http:// or https:// URL, got %q", c.Serve.Public.BaseURL)
	}
	if c.Serve.ShutdownTimeout <= 0 {
		ps.addf("serve.shutdown_timeout", "must be positive, got %s", c.Serve.ShutdownTimeout)
	}

	if len(c.Secrets.System) == 0 {
		ps.addf("secrets.system", "required; set VIGIL_SECRETS_SYSTEM to one or more comma-separated random strings of at least %d bytes, newest first (or run with --dev to generate one)", vigil.MinSecretLength)
	}
	seen := map[string]bool{}
	for i, s := range c.Secrets.System {
		p := fmt.Sprintf("secrets.system[%d]", i)
		if len(s) < vigil.MinSecretLength {
			ps.addf(p, "must be at least %d bytes, got %d", vigil.MinSecretLength, len(s))
		}
		if seen[s] {
			ps.addf(p, "repeats an earlier secret")
		}
		seen[s] = true
	}
	checkKey(&ps, "admin.api_key", "VIGIL_ADMIN_API_KEY", c.Admin.APIKey)
	checkKey(&ps, "hooks.api_key", "VIGIL_HOOKS_API_KEY", c.Hooks.APIKey)

	v := c.Verification
	if !v.EnableEmailVerification && !v.EnableSMSVerification {
		ps.addf("verification", "enable_email_verification and enable_sms_verification are both false; enable at least one")
	}
	checkRange(&ps, "verification.verification_code_expiration", v.VerificationCodeExpiration, 1, 24*60, " minutes")
	checkRange(&ps, "verification.sms_code_expiration_cap", v.SMSCodeExpirationCap, 1, 24*60, " minutes")
	checkRange(&ps, "verification.max_verification_retries", v.MaxVerificationRetries, 1, 100, "")
	switch r := flows.Require(v.Require); {
	case !r.Valid():
		ps.addf("verification.require", "must be one of any, email, phone, all, got %q", v.Require)
	case r == flows.RequireEmail && !v.EnableEmailVerification:
		ps.addf("verification.require", "is email but verification.enable_email_verification is false")
	case (r == flows.RequirePhone || r == flows.RequireAll) && !v.EnableSMSVerification:
		ps.addf("verification.require", "is %s but verification.enable_sms_verification is false", r)
	}
	checkRange(&ps, "verification.code_length", v.CodeLength, 4, 10, "")
	checkPositive(&ps, "verification.link_lifespan", v.LinkLifespan)
	if v.Resend.Cooldown < 0 {
		ps.addf("verification.resend.cooldown", "must not be negative, got %s", v.Resend.Cooldown)
	}
	checkRange(&ps, "verification.resend.per_destination_10m", v.Resend.PerDestination10m, 1, 1000, "")
	checkRange(&ps, "verification.resend.per_destination_hour", v.Resend.PerDestinationHour, 1, 10000, "")
	checkRange(&ps, "verification.resend.per_identity_hour", v.Resend.PerIdentityHour, 1, 10000, "")
	checkRange(&ps, "verification.resend.per_ip_hour", v.Resend.PerIPHour, 1, 100000, "")
	checkPositive(&ps, "verification.lockout.base", v.Lockout.Base)
	if v.Lockout.Max < v.Lockout.Base {
		ps.addf("verification.lockout.max", "must be at least verification.lockout.base (%s), got %s", v.Lockout.Base, v.Lockout.Max)
	}
	checkRange(&ps, "verification.lockout.hard_lock_after", v.Lockout.HardLockAfter, 1, 1000000, "")
	checkRange(&ps, "verification.check_per_ip_minute", v.CheckPerIPMinute, 1, 100000, "")
	if v.NoAddress != flows.NoAddressAllow && v.NoAddress != flows.NoAddressBlock {
		ps.addf("verification.no_address", "must be allow or block, got %q", v.NoAddress)
	}
	for path, u := range map[string]string{"kratos.admin_url": c.Kratos.AdminURL, "kratos.public_url": c.Kratos.PublicURL} {
		if u != "" && !isHTTPURL(u) {
			ps.addf(path, "must be an absolute http:// or https:// URL, got %q", u)
		}
	}
	if (c.Kratos.AdminURL == "") != (c.Kratos.PublicURL == "") {
		ps.addf("kratos", "set both admin_url and public_url, or neither")
	}
	if c.Kratos.Timeout <= 0 || c.Kratos.Timeout > 25*time.Second {
		ps.addf("kratos.timeout", "must be positive and at most 25s (Kratos gives a hook 30s in all), got %s", c.Kratos.Timeout)
	}

	c.validateDelivery(&ps)
	c.validateDevices(&ps)

	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		ps.addf("log.level", "must be one of debug, info, warn, error, got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case formatJSON, formatText:
	default:
		ps.addf("log.format", "must be json or text, got %q", c.Log.Format)
	}
	checkRange(&ps, "database.max_conns", c.Database.MaxConns, 1, 1000, "")
	return ps.err()
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func checkPort(ps *problems, path string, port int) {
	if port < 1 || port > 65535 {
		ps.addf(path, "must be between 1 and 65535, got %d", port)
	}
}

func checkRange(ps *problems, path string, n, lo, hi int, unit string) {
	if n < lo || n > hi {
		ps.addf(path, "must be between %d and %d%s, got %d", lo, hi, unit, n)
	}
}

func checkPositive(ps *problems, path string, d time.Duration) {
	if d <= 0 {
		ps.addf(path, "must be a positive duration, got %s", d)
	}
}

// minAPIKeyLength keeps admin and hook keys out of guessing range.
const minAPIKeyLength = 16

func checkKey(ps *problems, path, env, key string) {
	switch {
	case key == "":
		ps.addf(path, "required; set %s (or run with --dev to generate one)", env)
	case len(key) < minAPIKeyLength:
		ps.addf(path, "must be at least %d characters, got %d", minAPIKeyLength, len(key))
	}
}

// dsnScheme is the lower-cased scheme of a DSN, empty when it has none.
func dsnScheme(dsn string) string {
	scheme, _, ok := strings.Cut(dsn, ":")
	if !ok || scheme == "" || strings.ContainsAny(scheme, "/@ ") {
		return ""
	}
	return strings.ToLower(scheme)
}

// redactDSN hides a password in a DSN shown in an error.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// GeneratedSecret is one secret --dev made up because none was configured.
type GeneratedSecret struct {
	Env   string
	Value string
}

// ApplyDev fills what --dev promises: secrets that are missing are
// generated from r (crypto/rand in production code). It returns what it
// generated, so the caller can print it once.
func (c *Config) ApplyDev(r io.Reader) ([]GeneratedSecret, error) {
	var out []GeneratedSecret
	gen := func(env string, dst *string) error {
		b := make([]byte, 32)
		if _, err := io.ReadFull(r, b); err != nil {
			return fmt.Errorf("generate %s: %w", env, err)
		}
		*dst = fmt.Sprintf("%x", b)
		out = append(out, GeneratedSecret{Env: env, Value: *dst})
		return nil
	}
	if len(c.Secrets.System) == 0 {
		var s string
		if err := gen("VIGIL_SECRETS_SYSTEM", &s); err != nil {
			return nil, err
		}
		c.Secrets.System = []string{s}
	}
	if c.Admin.APIKey == "" {
		if err := gen("VIGIL_ADMIN_API_KEY", &c.Admin.APIKey); err != nil {
			return nil, err
		}
	}
	if c.Hooks.APIKey == "" {
		if err := gen("VIGIL_HOOKS_API_KEY", &c.Hooks.APIKey); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// WriteGenerated prints the secrets --dev generated, once, with how to
// keep them.
func WriteGenerated(w io.Writer, gen []GeneratedSecret) {
	if len(gen) == 0 {
		return
	}
	fmt.Fprintln(w, "vigil --dev: generated secrets for this run only:")
	fmt.Fprintln(w)
	for _, g := range gen {
		fmt.Fprintf(w, "  export %s=%s\n", g.Env, g.Value)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run the lines above in your shell (or put the values in vigil.yml) to keep them:")
	fmt.Fprintln(w, "the next start generates new ones, and data sealed with the old system secret")
	fmt.Fprintln(w, "(addresses in the dev database) can no longer be opened.")
	fmt.Fprintln(w)
}

// SMSCodeTTL is how long SMS codes live: the code expiration, capped.
func (v VerificationConfig) SMSCodeTTL() time.Duration {
	return time.Duration(min(v.VerificationCodeExpiration, v.SMSCodeExpirationCap)) * time.Minute
}

// Flows maps the configuration onto the verification engine's rules.
func (c *Config) Flows() flows.Config {
	v := c.Verification
	f := flows.Defaults()
	f.EnableEmail = v.EnableEmailVerification
	f.EnableSMS = v.EnableSMSVerification
	f.Require = flows.Require(v.Require)
	f.CodeLength = v.CodeLength
	f.CodeTTL = time.Duration(v.VerificationCodeExpiration) * time.Minute
	f.SMSCodeTTL = v.SMSCodeTTL()
	f.LinkTTL = v.LinkLifespan
	f.MaxAttempts = v.MaxVerificationRetries
	f.PublicURL = c.Serve.Public.BaseURL
	f.Dev = c.Dev
	f.ShowCodes = c.Dev
	f.CheckPerIP = v.CheckPerIPMinute
	f.RequiredOnLogin = v.VerificationRequiredOnLogin
	f.NoAddress = v.NoAddress
	f.Soft = v.Soft
	f.Resend = flows.ResendLimits{
		Cooldown:        v.Resend.Cooldown,
		PerDestination:  v.Resend.PerDestination10m,
		PerDestHour:     v.Resend.PerDestinationHour,
		PerIdentityHour: v.Resend.PerIdentityHour,
		PerIPHour:       v.Resend.PerIPHour,
	}
	f.Lockout = flows.LockoutRules{
		Base:      v.Lockout.Base,
		Max:       v.Lockout.Max,
		HardAfter: v.Lockout.HardLockAfter,
	}
	p := c.Delivery.SMS.Protection
	f.SMS = flows.SMSProtection{
		AllowedCountries: p.AllowedCountries,
		AllowedTypes:     p.AllowedNumberTypes,
		PrefixDigits:     p.PrefixDigits,
		PrefixPerHour:    p.PrefixPerHour,
		GlobalPerHour:    p.GlobalPerHour,
		Conversion: flows.ConversionWatch{
			Window: p.Conversion.Window, MinSent: p.Conversion.MinSent,
			Threshold: p.Conversion.Threshold, Throttle: p.Conversion.Throttle,
		},
	}
	f.Product = c.Templates.Product
	f.CaptchaOnResend = c.Captcha.Provider != ""
	d := c.Devices
	f.Devices = flows.DeviceRules{
		StepUp: d.StepUpOnNewDevice, TrustFor: d.TrustFor, IdleFor: d.IdleFor,
		EnrollmentTTL: d.EnrollmentTTL, CeremonyTTL: d.WebAuthn.Timeout,
	}
	return f
}

// validateDevices checks the devices section. The WebAuthn relying party
// itself (rp_id against origins) is checked when it is built.
func (c *Config) validateDevices(ps *problems) {
	d := c.Devices
	checkPositive(ps, "devices.trust_for", d.TrustFor)
	checkPositive(ps, "devices.idle_for", d.IdleFor)
	if d.EnrollmentTTL < time.Minute || d.EnrollmentTTL > 7*24*time.Hour {
		ps.addf("devices.enrollment_ttl", "must be between 1m and 168h, got %s", d.EnrollmentTTL)
	}
	if d.WebAuthn.Timeout < time.Second || d.WebAuthn.Timeout > 30*time.Minute {
		ps.addf("devices.webauthn.timeout", "must be between 1s and 30m, got %s", d.WebAuthn.Timeout)
	}
	if !strings.HasPrefix(d.Cookie.Name, "vigil_") || !validCookieName(d.Cookie.Name) {
		ps.addf("devices.cookie.name", "must start with vigil_ (the shipped login Jsonnet passes on only those cookies) and be a cookie name, got %q", d.Cookie.Name)
	}
	if _, ok := sameSiteModes[d.Cookie.SameSite]; !ok {
		ps.addf("devices.cookie.same_site", "must be lax, strict or none, got %q", d.Cookie.SameSite)
	}
	if d.Cookie.SameSite == "none" && !d.Cookie.Secure {
		ps.addf("devices.cookie.same_site", "none needs devices.cookie.secure: browsers drop such cookies otherwise")
	}
	if d.WebAuthn.RPID == "" && len(d.WebAuthn.Origins) > 0 {
		ps.addf("devices.webauthn.rp_id", "required when devices.webauthn.origins is set")
	}
	if d.WebAuthn.RPID != "" && len(d.WebAuthn.Origins) == 0 {
		ps.addf("devices.webauthn.origins", "list the origins the enrollment pages are served on (%s)", c.Serve.Public.BaseURL)
	}
	if d.WebAuthn.RPID != "" && len(d.WebAuthn.Origins) > 0 {
		if err := c.webauthnConfig().Validate(); err != nil {
			ps.addf("devices.webauthn", "%v", err)
		}
		// The enrollment links point at the public base URL: its origin
		// must be one the ceremonies may run on.
		if u, err := url.Parse(c.Serve.Public.BaseURL); err == nil && isHTTPURL(c.Serve.Public.BaseURL) &&
			!slices.Contains(d.WebAuthn.Origins, u.Scheme+"://"+u.Host) {
			ps.addf("devices.webauthn.origins", "must include the origin of serve.public.base_url (%s://%s): enrollment links open there", u.Scheme, u.Host)
		}
	}
}

func (c *Config) webauthnConfig() webauthn.Config {
	w := c.Devices.WebAuthn
	return webauthn.Config{RPID: w.RPID, RPName: w.RPName, Origins: w.Origins, Timeout: w.Timeout}
}

var sameSiteModes = map[string]http.SameSite{
	"lax": http.SameSiteLaxMode, "strict": http.SameSiteStrictMode, "none": http.SameSiteNoneMode,
}

func validCookieName(n string) bool {
	if n == "" || len(n) > 64 {
		return false
	}
	for _, c := range n {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}
