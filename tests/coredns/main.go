// Command coredns is CoreDNS (github.com/coredns/coredns, pinned in go.mod
// beside this file) with only the plugins Portico's node uses: the cluster
// DNS for `cluster.local` from the Kubernetes API, with readiness, health,
// caching and logging. `../controlplane/build.sh` builds it into the cache
// beside the Kubernetes binaries. The plugin order is CoreDNS's own
// (core/dnsserver/zdirectives.go), restricted to these plugins.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

var directives = []string{
	"bind",
	"ready",
	"health",
	"errors",
	"log",
	"loadbalance",
	"cache",
	"kubernetes",
}

func init() {
	dnsserver.Directives = directives
}

func main() {
	coremain.Run()
}
