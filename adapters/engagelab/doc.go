// Package engagelab sends and checks one-time codes through EngageLab OTP,
// a provider that generates the codes itself; *Sender implements
// vigil.OTPSender. Vigil still counts attempts, limits resends, locks out
// and audits; EngageLab generates, delivers (SMS, WhatsApp, voice or
// e-mail, as the template's channel strategy says) and compares.
//
// # Wire format
//
// As documented by EngageLab (REST API "OTP Send" and "OTP Verify", and
// the OpenAPI files of their docs repository, github.com/DevEngageLab/
// engagelab-otp-docs): base URL https://otp.api.engagelab.cc, JSON bodies,
// HTTP basic auth with the dev key and dev secret of the OTP console.
//
// SendOTP posts to /v1/messages
//
//	{"to": "+4915123456780", "template": {"id": "vigil-otp", "language": "en"}}
//
// (with "params" when Config.Params is set) and takes the "message_id" of
// the answer {"message_id": "1725407449772531712", "send_channel": "sms"}
// as SendResult.ProviderID. CheckOTP posts to /v1/verifications
//
//	{"message_id": "1725407449772531712", "verify_code": "667090"}
//
// and returns "verified" from {"message_id": ..., "verify_code": ...,
// "verified": true}. OTPCheck.To is not sent: EngageLab checks by message
// id. EngageLab has no idempotency key, so OTPRequest.ID is not sent
// either, and a retry after a lost answer sends a second code; only the
// newest message id then checks.
//
// # Languages
//
// EngageLab templates come in the languages default, zh_CN, zh_HK, en,
// ja, th and es. OTPRequest.Locale (BCP 47; "_" is read as "-", case is
// ignored) maps to them like this:
//
//   - Config.Templates first: the longest prefix of the locale's subtags
//     that names a template ("de-AT" tries "de-at", then "de") selects
//     that template with language "default". Use it for languages
//     EngageLab does not offer: one template per language.
//   - en*, ja*, th*, es* → en, ja, th, es ("en-GB" → en).
//   - zh with script Hant or region HK, MO or TW, and yue → zh_HK; other
//     zh → zh_CN ("zh", "zh-CN", "zh-Hans-SG").
//   - Anything else, and an empty locale → Config.Language ("default"
//     when unset), with Config.TemplateID.
//
// # Results and errors
//
// Errors never carry the recipient, the code or the credentials, nor
// EngageLab's error message (which may quote the recipient): non-2xx
// answers are *Error with the HTTP status and EngageLab's numeric code.
// At most 64 KiB of an answer is read.
//
// SendOTP: network failures, the deadline (Config.Timeout, or a shorter
// context deadline), 408, 429 and 5xx are transient, and so are the codes
// EngageLab calls retryable: 1000 internal error, 3004 rate limited, 5001
// send failed, 5016 internal send error, 5018 handset off. Every other
// answer is permanent (vigil.Permanent): 2001, 2002, 2004 (wrong or
// disabled credentials, 401/403), 3001, 3002 (a request EngageLab cannot
// read), 3003, 4001 (unknown template), 5011-5015, 5017, 5019, 5020
// (invalid, blocked, unreachable or unsubscribed number, rejected
// content), unexpected 3xx (redirects are not followed) and other 4xx. A
// 2xx without a message_id is a transient error: the code it may have sent
// can never be checked.
//
// CheckOTP: verified true is (true, nil), verified false (a wrong code) is
// (false, nil). A 4xx with code 3003 (EngageLab: the code expired or was
// already verified) is (false, nil) too; EngageLab does not document which
// code an unknown message id gets, and this package assumes 3003. A code
// that is not 1 to 32 ASCII letters or digits is (false, nil) without a
// call. Everything else (network, deadline, 429, 5xx, 401, a bare 404,
// other 4xx, a 2xx without "verified") is an error: EngageLab could not
// answer.
//
// The error codes and which of them are retryable come from EngageLab's
// error code reference as published with their agent skills
// (github.com/DevEngageLab/engagelab-skills, engagelab-otp/skills/
// engagelab-otp-send/references/ERRORS.md); their OpenAPI files define
// the {"code": 3001, "message": "..."} error body but list no codes.
//
// # Imports
//
// The module root and the standard library only. It must not import other
// adapters, flows, hooks or api; internal/engagelabtest, its fake, is for
// its tests only.
package engagelab
