// Command kubestack is a multicall binary holding the real Kubernetes control
// plane (kube-apiserver, kube-controller-manager, kube-scheduler), a node
// (kubelet, kube-proxy), kubectl and etcd, built from their official Go
// modules. There is no Docker on the machines mediaflow is developed on, so the
// local stack runs these servers as plain processes; one binary links the
// shared Kubernetes packages once.
//
// The command to run is chosen from the program name (argv[0], e.g. a symlink
// named kube-apiserver) or from the first argument (kubestack kube-apiserver ...).
// Only the selected command is constructed, because the upstream constructors
// do global setup (flag registration, feature gates) that must not run twice.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"go.etcd.io/etcd/server/v3/etcdmain"
	"k8s.io/component-base/cli"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"
)

func main() {
	name := filepath.Base(os.Args[0])
	args := os.Args
	if name == "kubestack" {
		if len(os.Args) < 2 {
			fmt.Fprintln(os.Stderr, "usage: kubestack {kube-apiserver|kube-controller-manager|kube-scheduler|kubelet|kube-proxy|kubectl|etcd} [flags]")
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
	case "kube-scheduler":
		os.Args = args
		os.Exit(cli.Run(scheduler.NewSchedulerCommand()))
	case "kubelet":
		os.Args = args
		os.Exit(cli.Run(kubelet.NewKubeletCommand(context.Background())))
	case "kube-proxy":
		os.Args = args
		os.Exit(cli.Run(proxy.NewProxyCommand()))
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
