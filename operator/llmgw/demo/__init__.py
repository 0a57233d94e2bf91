"""`llmgw demo`: the operator's main job on one machine, with real LiteLLM gateway pods.

An embedded Kubernetes API (`apiserver`, shared with the integration suite), the
real operator (`llmgw.runner.operate`), a local pod runner that plays the
Deployment controller and the kubelet for the gateway Deployments (`podrunner`,
`controller`, `kubelet`, `processes`), a local Service (`service`), fake vLLM and
Ollama backends (`backends`), and the folder applied like `kubectl apply --prune`
(`estate`). Needs the `demo` extra (`pip install 'llmgw[demo]'`) and the pinned
LiteLLM proxy; `make demo` installs both.
"""
