"""A Kubernetes API server emulator with a kubelet that runs pods as Docker containers.

For the kubernetes target's tests (issue 23): no kube-apiserver can run on these
machines, so this speaks the API as documented (discovery, server-side apply and patches,
list/watch, Status errors, scale/status/log subresources, the services proxy) and is
proven against the official ``kubernetes`` Python client and ``kubectl``
(test_emulator.py). Modules: resources (types, discovery), store (objects, apply,
watch), controllers (Deployments, GC, HPA, KServe), kubelet (Docker), emulator (HTTP).
"""
