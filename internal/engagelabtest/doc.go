// Package engagelabtest runs a fake EngageLab OTP API for tests.
//
// The fake is an httptest.Server that speaks EngageLab's wire format, so
// the production client in adapters/engagelab runs unchanged against it:
//
//	srv := engagelabtest.Start(t)
//	s, err := engagelab.New(engagelab.Config{
//		BaseURL: srv.URL(), DevKey: engagelabtest.DevKey,
//		DevSecret: engagelabtest.DevSecret, TemplateID: engagelabtest.TemplateID,
//	})
//	res, err := s.SendOTP(ctx, vigil.OTPRequest{To: "+4915123456780"})
//	code := srv.Code(t, res.ProviderID) // what the user would have received
//	ok, err := s.CheckOTP(ctx, vigil.OTPCheck{ProviderID: res.ProviderID, Code: code})
//
// # What it does
//
//   - POST /v1/messages takes {"to", "template": {"id", "language",
//     "params"}}, generates a six-digit code and answers {"message_id",
//     "send_channel"}. Message ids are 19-digit strings, like EngageLab's.
//   - POST /v1/verifications takes {"message_id", "verify_code"} and
//     answers {"message_id", "verify_code", "verified"}; a wrong code is
//     200 with verified false. A code already verified, an expired one
//     (WithTTL, WithClock, Expire) and an unknown message id are 400 with
//     code 3003.
//   - Every request must carry HTTP basic auth base64(dev_key:dev_secret)
//     (else 401, code 2001) and Content-Type application/json (else 400,
//     code 3001). Errors have EngageLab's shape {"code": 3003, "message":
//     "..."}; some messages quote the recipient, as EngageLab's may, so
//     tests can check that clients do not pass them on.
//   - Unknown templates are 400 with code 4001 (WithTemplates), unsupported
//     languages 400 with 3002, recipients that are neither E.164 numbers
//     nor e-mail addresses 400 with 5011. Undocumented request fields are
//     refused with 3001: the fake is stricter than EngageLab may be.
//
// Fail queues answers for the next requests to an endpoint: a status with
// an EngageLab error code, a raw body, or a delay. Messages, Message, Code
// and Requests expose what the server saw.
//
// Where EngageLab's documentation is silent (the code for an unknown
// message id, limits on checks per code), the fake picks the behaviour
// adapters/engagelab's documentation assumes.
//
// # Imports
//
// Standard library only. It is test support: nothing outside _test.go
// files may import it, and it must not import the adapters, flows or api.
package engagelabtest
