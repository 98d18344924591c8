// X-P, weight stationary, one level: input columns X across the PEs (a sliding window of Sz(S)
// columns each), rows Y in time; a tile of ?k output channels and ?c input channels stays in the PEs
// while the windows slide over the whole map.
// Holes: ?k (output-channel tile), ?c (input-channel tile).
// Source: Kwon et al., "Understanding Reuse, Performance, and Hardware Cost of DNN Dataflows: A
// Data-Centric Approach", MICRO 2019 (the X-P dataflow).
Dataflow {
	TemporalMap(?k,?k) K;
	TemporalMap(?c,?c) C;
	TemporalMap(Sz(R),1) Y;
	SpatialMap(Sz(S),1) X;
	TemporalMap(Sz(R),Sz(R)) R;
	TemporalMap(Sz(S),Sz(S)) S;
}
