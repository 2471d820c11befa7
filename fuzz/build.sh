#!/usr/bin/env bash
# Builds the harnesses and instruments a copy of the code under test with SharpFuzz in DIR: fuzz/build.sh DIR
set -euo pipefail
cd "$(dirname "$0")"
dest=${1:?usage: fuzz/build.sh DIR}
dotnet tool restore >/dev/null
# An ordinary (incremental) build, then a copy: the build the test run made stays uninstrumented.
dotnet build Xmpp.Fuzz -c Release --nologo -v quiet >/dev/null
mkdir -p "$dest"
cp -r Xmpp.Fuzz/bin/Release/net10.0/. "$dest"
# Only the code under test: instrumenting all of the server would fill the coverage map with its start-up paths.
dotnet sharpfuzz "$dest/Xmpp.Protocol.dll"
dotnet sharpfuzz "$dest/xmppd.dll" Xmpp.Server.Http.WebClients Xmpp.Server.Modules.Upload Xmpp.Server.Streams.XmppStream Xmpp.Server.ProxyProtocol
