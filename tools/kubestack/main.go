// Command kubestack is a multicall binary holding the real Kubernetes control
// plane (kube-apiserver, kube-controller-manager), kubectl and etcd, built from
// their official Go modules. There is no Docker on the machines mediaflow is
// developed on, so the local stack runs these servers as plain processes.
//
// The command to run is chosen from the program name (argv[0], e.g. a symlink
// named kube-apiserver) or from the first argument (kubestack kube-apiserver ...).
// Only the selected command is constructed, because the upstream constructors
// do global setup (flag registration, feature gates) that must not run twice.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"go.etcd.io/etcd/server/v3/etcdmain"
	"k8s.io/component-base/cli"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	name := filepath.Base(os.Args[0])
	args := os.Args
	if name == "kubestack" {
		if len(os.Args) < 2 {
			fmt.Fprintln(os.Stderr, "usage: kubestack {kube-apiserver|kube-controller-manager|kubectl|etcd} [flags]")
			os.Exit(64)
		}
		name = os.Args[1]
		args = append([]string{name}, os.Args[2:]...)
	}
	switch name {
	case "kube-apiserver":
		os.Args = args
		os.Exit(cli.Run(apiserver.NewAPIServerCommand()))
	case "kube-controller-manager":
		os.Args = args
		os.Exit(cli.Run(controllermanager.NewControllerManagerCommand()))
	case "kubectl":
		os.Args = args
		os.Exit(cli.Run(kubectlcmd.NewDefaultKubectlCommand()))
	case "etcd":
		etcdmain.Main(args)
	default:
		fmt.Fprintf(os.Stderr, "kubestack: unknown command %q\n", name)
		os.Exit(64)
	}
}
