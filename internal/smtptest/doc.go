// Package smtptest runs an in-process SMTP server for tests.
//
// The server speaks real SMTP over TCP on 127.0.0.1 (EHLO/HELO, STARTTLS,
// AUTH PLAIN and LOGIN, MAIL, RCPT, DATA, RSET, NOOP, VRFY, QUIT), so the
// production mail code runs unchanged against it, and it records every
// accepted message for assertions:
//
//	srv := smtptest.Start(t)
//	sender, err := smtp.New(smtp.Config{URL: srv.URL(), From: "vigil@example.com"})
//	...
//	msgs, err := srv.WaitFor(ctx, 1)
//	p := msgs[0].MustParse(t)
//	// p.Subject, p.Text(), p.HTML()
//
// Hooks (OnMail, OnRcpt, OnData) make the server answer a command with a
// chosen reply, to test how clients treat 4xx and 5xx answers.
//
// # Imports
//
// Standard library only. It must not import the adapters, flows or api: it
// is a fake of an outside service, shared by their tests.
package smtptest
