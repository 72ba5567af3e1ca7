package templates_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"

	"github.com/vigil-auth/vigil"
	"github.com/vigil-auth/vigil/flows/templates"
)

func files(m map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for name, text := range m {
		fsys[name] = &fstest.MapFile{Data: []byte(text)}
	}
	return fsys
}

func TestLoadOverridesOneTemplate(t *testing.T) {
	t.Parallel()
	s, warnings, err := templates.LoadFS(files(map[string]string{
		"de/login_code.sms.tmpl": "{{.Code}} ist Ihr Code.\n",
	}), "en")
	require.NoError(t, err)
	require.Empty(t, warnings)

	r, err := s.Render(templates.KindLoginCode, vigil.ChannelSMS, "de", data(vigil.ChannelSMS))
	require.NoError(t, err)
	require.Equal(t, "482913 ist Ihr Code.", r.Text)

	r, err = s.Render(templates.KindLoginCode, vigil.ChannelEmail, "de", data(vigil.ChannelEmail))
	require.NoError(t, err)
	require.Equal(t, "Ihr Anmeldecode für Acme", r.Subject, "the other parts stay built-in")

	r, err = s.Render(templates.KindVerificationCode, vigil.ChannelSMS, "de", data(vigil.ChannelSMS))
	require.NoError(t, err)
	require.Contains(t, r.Text, "Bestätigungscode")
}

func TestLoadNewLanguageFallsBackPartByPart(t *testing.T) {
	t.Parallel()
	s, warnings, err := templates.LoadFS(files(map[string]string{
		"it/verification_code.subject.tmpl": "Conferma il tuo indirizzo email",
		"it/verification_code.sms.tmpl":     "Il tuo codice di verifica è {{.Code}}.",
	}), "de")
	require.NoError(t, err)
	require.Equal(t, []string{"de", "en", "es", "fr", "it"}, s.Languages())
	require.Len(t, warnings, len(templates.Kinds())*len(templates.Parts())-2)
	require.Contains(t, warnings, "templates: it has no verification_code.txt.tmpl; using de's")
	require.NotContains(t, strings.Join(warnings, "\n"), "verification_code.sms")

	r, err := s.Render(templates.KindVerificationCode, vigil.ChannelSMS, "it-CH", data(vigil.ChannelSMS))
	require.NoError(t, err)
	require.Equal(t, "it", r.Lang)
	require.Equal(t, "Il tuo codice di verifica è 482913.", r.Text)

	r, err = s.Render(templates.KindVerificationCode, vigil.ChannelEmail, "it", data(vigil.ChannelEmail))
	require.NoError(t, err)
	require.Equal(t, "Conferma il tuo indirizzo email", r.Subject)
	require.Contains(t, r.Text, "Mit diesem Code")
	require.Equal(t, "de", r.Lang, "the body is the default language's")

	require.Equal(t, "it", s.Pick("", "it-IT, en;q=0.5"))
}

func TestLoadReportsEveryError(t *testing.T) {
	t.Parallel()
	_, warnings, err := templates.LoadFS(files(map[string]string{
		"de/login_code.sms.tmpl":         "{{.Code",
		"de/welcome.sms.tmpl":            "hi",
		"de/login_code.pdf.tmpl":         "hi",
		"de/login_code.tmpl":             "hi",
		"fr/new_device.txt.tmpl":         "{{if .Link}}{{.Cod}}{{end}}{{with .Device}}{{$.Prodcut}}{{.Anything}}{{end}}",
		"es/login_code.html.tmpl":        "<p>{{.Nope}}</p>",
		"en/login_code.subject.tmpl":     `{{plural .Code}}`,
		"es/verification_code.sms.tmpl":  "\n",
		"es/new_device.html.tmpl":        `<a href="{{.Link}}>x</a>`,
		"not a tag!/login_code.sms.tmpl": "hi",
		"de/README.md":                   "notes",
		"notes.txt":                      "notes",
		".git/config":                    "ignored",
	}), "en")
	require.Error(t, err)
	for _, want := range []string{
		"de/login_code.sms.tmpl: template: login_code.sms:1: unclosed action",
		`de/welcome.sms.tmpl: unknown kind "welcome"`,
		`de/login_code.pdf.tmpl: unknown part "pdf"`,
		"de/login_code.tmpl: name is not <kind>.<part>.tmpl",
		"fr/new_device.txt.tmpl: new_device.txt:1:14: unknown field Cod",
		"new_device.txt:1:46: unknown field Prodcut",
		"es/login_code.html.tmpl: login_code.html:1:5: unknown field Nope",
		"en/login_code.subject.tmpl: template: login_code.subject:1:2: executing",
		"es/verification_code.sms.tmpl: renders nothing",
		"es/new_device.html.tmpl: html/template",
		"not a tag!: directory name is not a language tag",
	} {
		require.ErrorContains(t, err, want)
	}
	require.NotContains(t, err.Error(), "Anything", "inside with, dot is not Data")
	require.Contains(t, warnings, "templates: de/README.md ignored: not a .tmpl file")
	require.Contains(t, warnings, "templates: notes.txt ignored: templates go in a directory per language")
}

func TestLoadWarnsAboutLongSMS(t *testing.T) {
	t.Parallel()
	_, warnings, err := templates.LoadFS(files(map[string]string{
		"en/login_code.sms.tmpl": strings.Repeat("Long text. ", 15) + "{{.Code}}",
		"fr/login_code.sms.tmpl": "Ça y est, voici votre code de connexion : {{.Code}}. Il expire bientôt, saisissez-le vite.",
	}), "")
	require.NoError(t, err)
	require.Equal(t, []string{
		"templates: en/login_code.sms.tmpl takes 2 GSM-7 segments with sample data; one is the aim",
		"templates: fr/login_code.sms.tmpl takes 2 UCS-2 segments with sample data; one is the aim",
	}, warnings)
}

func TestLoadDefaultLanguage(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		fsys fs.FS
		lang string
		want string // error; empty for none
		def  string
	}{
		{"empty is English", nil, "", "", "en"},
		{"canonical case", nil, "DE", "", "de"},
		{"posix spelling, base language", nil, "fr_FR.UTF-8", "", "fr"},
		{"not a tag", nil, "!!", `default language "!!" is not a language tag`, ""},
		{
			"not a tag, and a broken template", files(map[string]string{"de/login_code.sms.tmpl": "{{"}), "!!",
			"de/login_code.sms.tmpl: template: login_code.sms:1: unclosed action", "",
		},
		{"not shipped", nil, "it", "default language it has no templates (have: de, en, es, fr)", ""},
		{
			"incomplete operator language", files(map[string]string{"it/login_code.sms.tmpl": "{{.Code}}"}), "it",
			"default language it has no verification_code.subject.tmpl", "",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, _, err := templates.LoadFS(tc.fsys, tc.lang)
			if tc.want != "" {
				require.ErrorContains(t, err, tc.want)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.def, s.Default())
			require.Equal(t, tc.def, s.Pick("", ""))
		})
	}
}

func TestLoadSecondDirectoryForALanguage(t *testing.T) {
	t.Parallel()
	_, _, err := templates.LoadFS(files(map[string]string{
		"pt-BR/login_code.sms.tmpl": "{{.Code}}",
		"pt_br/login_code.sms.tmpl": "{{.Code}}",
	}), "en")
	require.ErrorContains(t, err, "pt_br: a second directory for language pt-BR")
}

func TestLoadDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.CopyFS(dir, templates.BuiltinFS()))

	s, warnings, err := templates.Load(dir, "en")
	require.NoError(t, err)
	require.Empty(t, warnings, "a copy of the built-in files loads as is")
	require.Equal(t, shipped, s.Languages())

	require.NoError(t, os.WriteFile(filepath.Join(dir, "es", "login_code.sms.tmpl"), []byte("Clave: {{.Code}}\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "es", "login_code.txt.tmpl"), []byte("{{.Cdoe}}\n"), 0o600))
	_, _, err = templates.Load(dir, "en")
	require.ErrorContains(t, err, filepath.Join(dir, "es", "login_code.txt.tmpl")+": login_code.txt:1:2: unknown field Cdoe")

	require.NoError(t, os.Remove(filepath.Join(dir, "es", "login_code.txt.tmpl")))
	s, _, err = templates.Load(dir, "en")
	require.NoError(t, err, "a shipped language missing a file keeps the built-in one")
	r, err := s.Render(templates.KindLoginCode, vigil.ChannelSMS, "es", data(vigil.ChannelSMS))
	require.NoError(t, err)
	require.Equal(t, "Clave: 482913", r.Text)

	_, _, err = templates.Load(filepath.Join(dir, "missing"), "en")
	require.ErrorContains(t, err, "no such file or directory")
	_, _, err = templates.Load(filepath.Join(dir, "es", "login_code.sms.tmpl"), "en")
	require.ErrorContains(t, err, "is not a directory")
}
