"""`scripts/demo`: the main job end to end on the local twin, with no AWS account.

cloud.py   the cloud side: moto server, model compile + package, `edgeml build` of the three components
device.py  one simulated core device: artifacts installed as the nucleus does, IPC and Stream Manager
           twins, the inference app as a process with the unmodified SDK clients
digits.py  held-out digit images as PNG files, labelled by name
report.py  what came back (stream, Kinesis, IoT Core, S3), as a table and JSON
run.py     the steps in order
"""
