//! Lowering: cluster model for one node → IR.
