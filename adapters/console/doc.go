// Package console "delivers" messages by printing them, for development
// and for trying Vigil without a mail server or SMS provider; *Sender
// implements vigil.Sender.
//
// Outside dev mode (showSecrets false) a message becomes one line with the
// channel, the message ID, a masked recipient (a***@example.com,
// +49 ****780) and the subject, and never the text: the text holds the code
// or link, and console output ends up in logs. Runs of four or more digits
// and URLs are cut from the subject as well, because subjects carry codes
// too (Kratos' default is "Use code 606991 to verify your account").
//
// In dev mode (showSecrets true) the full recipient and text are printed,
// so a developer can read the code off the terminal.
//
// Each message is one Write, so messages from concurrent sends never
// interleave.
//
// # Imports
//
// The module root and the standard library only. It must not import other
// adapters, flows, hooks or api.
package console
