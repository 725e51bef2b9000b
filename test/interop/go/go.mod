// Go peers for the interop suites: each cmd/<name> builds to .peers/bin/<name> (test/interop/setup.sh).
module effect-wire/interop

go 1.21

require (
	github.com/inconshreveable/muxado v0.0.0-20160802230925-fc182d90f26e
	golang.ngrok.com/muxado/v2 v2.0.2
)
