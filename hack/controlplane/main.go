// Command controlplane is one multi-call binary holding the Kubernetes
// components that the tests and the sandbox run: linking once saves build
// time and disk compared with five separate binaries (issue #2).
//
// Usage: controlplane <component> [flags...], or invoke it through a
// symlink named after the component.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	_ "time/tzdata" // CronJob time zones, as upstream's main packages do

	"github.com/spf13/cobra"
	etcdmain "go.etcd.io/etcd/server/v3/etcdmain"
	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
)

var components = map[string]func() *cobra.Command{
	"kube-apiserver":          apiserver.NewAPIServerCommand,
	"kube-controller-manager": controllermanager.NewControllerManagerCommand,
	"kube-scheduler":          func() *cobra.Command { return scheduler.NewSchedulerCommand() },
}

func main() {
	name := filepath.Base(os.Args[0])
	args := os.Args
	if name == "controlplane" {
		if len(os.Args) < 2 {
			fmt.Fprintln(os.Stderr, "usage: controlplane {etcd|kube-apiserver|kube-controller-manager|kube-scheduler|kubectl} [flags]")
			os.Exit(2)
		}
		name, args = os.Args[1], os.Args[1:]
	}
	// Every component parses os.Args itself, so make it look as if the
	// component had been called directly.
	os.Args = args
	switch {
	case name == "etcd":
		etcdmain.Main(args)
	case name == "kubectl":
		logs.GlogSetter(kubectlcmd.GetLogVerbosity(args)) //nolint:errcheck
		command := kubectlcmd.NewDefaultKubectlCommand()
		if err := cli.RunNoErrOutput(command); err != nil {
			kubectlutil.CheckErr(err)
		}
	case components[name] != nil:
		command := components[name]()
		command.SetArgs(args[1:])
		os.Exit(cli.Run(command))
	default:
		fmt.Fprintf(os.Stderr, "unknown component %q; known: etcd, kubectl, %s\n", name, strings.Join(keys(), ", "))
		os.Exit(2)
	}
}

func keys() []string {
	out := make([]string, 0, len(components))
	for k := range components {
		out = append(out, k)
	}
	return out
}
