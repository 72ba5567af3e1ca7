package templates_test

import (
	"fmt"
	"time"

	"github.com/vigil-auth/vigil"
	"github.com/vigil-auth/vigil/flows/templates"
)

// Render a login code by SMS in the language an Austrian browser asks
// for.
func ExampleSet_Render() {
	set := templates.Builtin() // or templates.Load(dir, "en") at start-up, logging the warnings
	minutes, hours := templates.Expiry(10 * time.Minute)

	lang := set.Pick("", "de-AT, de;q=0.9, en;q=0.5")
	msg, err := set.Render(templates.KindLoginCode, vigil.ChannelSMS, lang, templates.Data{
		Code: "482913", Minutes: minutes, Hours: hours, Product: "Acme",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(msg.Lang)
	fmt.Println(msg.Text)
	fmt.Println(templates.SMSInfo(msg.Text))
	// Output:
	// de
	// Acme: Ihr Anmeldecode lautet 482913. Er ist 10 Minuten gültig. Geben Sie ihn nicht weiter.
	// GSM-7 1
}

func ExampleSMSInfo() {
	fmt.Println(templates.SMSInfo("Votre code : 123456"))
	fmt.Println(templates.SMSInfo("Ça y est : 123456"))
	fmt.Println(templates.SMSInfo("ça y est : 123456"))
	// Output:
	// GSM-7 1
	// GSM-7 1
	// UCS-2 1
}
