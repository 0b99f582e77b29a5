pub enum WalCommand {}
