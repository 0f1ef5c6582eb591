export { Regulator, decideBan, type BanState } from './regulator.js'
