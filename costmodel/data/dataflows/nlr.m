// No local reuse (DianNao-style), one level: input channels C across the PEs, innermost, so every step
// brings new inputs and weights to every PE and nothing stays in the PEs; partial sums are reduced
// across the PEs. ?k output channels per step, ?c input channels per PE.
// Holes: ?k (output-channel tile), ?c (input channels per PE).
// Source: Kwon et al., "Understanding Reuse, Performance, and Hardware Cost of DNN Dataflows: A
// Data-Centric Approach", MICRO 2019 (NLR in the MAESTRO paper's list of dataflows).
Dataflow {
	TemporalMap(?k,?k) K;
	TemporalMap(Sz(R),1) Y;
	TemporalMap(Sz(S),1) X;
	TemporalMap(Sz(R),Sz(R)) R;
	TemporalMap(Sz(S),Sz(S)) S;
	SpatialMap(?c,?c) C;
}
