"""Diagnostics: gradient flow through time for tanh RNN, GRU and LSTM encoders."""
