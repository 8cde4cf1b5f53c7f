"""Hand-written tools: training and evaluation, the embedded shapes dataset, weight
conversion, visualisation, the demo and benchmarks. Each module is also a script
(``python tools/train_net.py ...``); being a package lets them share code and lets the
tests import them as ``tools.<module>``."""
