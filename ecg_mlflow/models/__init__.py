"""Models: the backbone catalog (catalog.py, no Keras), encoders (backbones.py; the LSTM's fused
training kernel in lstm_kernel.py), the self-supervised model (ssl.py), classifiers and ensembles
(classifier.py) and their served form (served.py)."""
