"""`scripts/demo`: the main job end to end on the local twin, with no AWS account.

cloudtwin.py    the cloud twin's endpoint for the run (moto + GreengrassV2 control plane), restartable
cloud.py        cloud side: resources, model compile + package, `edgeml build` and `edgeml publish`
devicepython.py the device OS's python3 and the offline wheelhouse the Runtime's Install step uses
fleet.py        the core devices: nucleus twins in a thing group, deployments through the control plane,
                and what the demo reads back from each (streams, IoT Core publishes, logs)
digits.py       held-out digit images as PNG files, labelled by name
report.py       what came back, as tables (every row) and JSON
run.py          the steps in order
"""
