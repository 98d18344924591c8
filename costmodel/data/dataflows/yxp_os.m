// YX-P, output stationary: output rows Y' across PE clusters, output columns X' across the ?x PEs of
// a cluster (one output pixel per PE); each PE accumulates its pixel over C, R and S in place.
// Holes: ?k (output-channel tile), ?c (input-channel tile), ?x (output columns per step = PEs per
// cluster; its domain is the common divisors of the output width and the PE count).
// Source: Kwon et al., "Understanding Reuse, Performance, and Hardware Cost of DNN Dataflows: A
// Data-Centric Approach", MICRO 2019 (the YX-P dataflow, ShiDianNao-style).
Dataflow {
	TemporalMap(?k,?k) K;
	TemporalMap(?c,?c) C;
	SpatialMap(1,1) Y';
	TemporalMap(?x,?x) X';
	TemporalMap(Sz(R),Sz(R)) R;
	TemporalMap(Sz(S),Sz(S)) S;
	Cluster(?x, P);
	SpatialMap(1,1) X';
	TemporalMap(Sz(R),Sz(R)) R;
	TemporalMap(Sz(S),Sz(S)) S;
}
