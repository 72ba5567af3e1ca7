// Package templates writes the messages Vigil sends (codes, links and
// notices) by email and SMS, in the language that best fits the person,
// from templates an operator can replace.
//
// # Kinds and parts
//
// Each kind (verification_code, verification_link, login_code,
// new_device, address_changed, app_unreachable) has four parts: the email
// subject, the email plain-text body (txt), the email HTML body and the
// SMS text. The HTML body uses html/template, so every value is escaped;
// the others use text/template. A link appears in the HTML both as a
// button and as plain text, for mail clients that strip links.
//
// Templates see Data: Code, Link, Minutes, Hours (set only from two hours
// on), Destination (masked), Channel ("email" or "sms", for the words of
// the address a notice is about), Product (empty leaves the name out),
// Device and Time. Besides the text/template built-ins they may call
// plural (plural .Minutes "minute" "minutes").
//
// # Directory layout
//
// Operators keep templates in a directory with one subdirectory per
// language (BCP 47, "de" or "pt-BR"; "pt_BR" is read too) and one file per
// part:
//
//	templates/
//	  de/
//	    login_code.subject.tmpl
//	    login_code.txt.tmpl
//	    login_code.html.tmpl
//	    login_code.sms.tmpl
//	  it/
//	    verification_code.sms.tmpl
//
// A file replaces the shipped one for its language, kind and part; every
// other shipped file stays. A language Vigil does not ship may hold only
// some files; each missing one is taken from the default language and
// Load says so in its warnings. To start from the shipped files, copy
// flows/templates/builtin from the source tree, or write them out with
// os.CopyFS(dir, templates.BuiltinFS()).
//
// Load parses every template, checks each field it names against Data in
// every branch, and runs it with sample data (missingkey=error), so a
// broken directory fails at start-up with every problem listed, not at
// the first send. SMS templates whose sample rendering needs more than
// one segment are reported as warnings; the shipped ones all fit one
// GSM-7 segment (SMSInfo counts segments: GSM-7 with its extension table,
// else UCS-2).
//
// # Language
//
// Set.Pick takes the identity's locale first, then the Accept-Language
// header (q-values honoured), then the default language; "de-AT" falls
// back to "de", "pt-PT" to another "pt" region. It parses tags itself
// rather than with golang.org/x/text, which this module does not require
// directly.
//
// # Imports
//
// The root package and the standard library. Never net/http, adapters or
// API packages: callers hand in header values and the rendered message
// goes out through vigil.Outbound.
package templates
