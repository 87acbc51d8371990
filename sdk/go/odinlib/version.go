package odinlib

// Version is this SDK's version: the same as Odin's and as its other SDKs'. The module
// proxy that `make sdk-packages` writes (dist/goproxy) serves the module as "v" + Version.
const Version = "0.1.0"
