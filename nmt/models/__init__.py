"""Models: recurrent encoder, attention, decoder and the Seq2Seq that joins them."""
