#ifndef I2P_VERSION_H
#define I2P_VERSION_H
#define I2PMAE_VERSION "0.1.0"
#endif
